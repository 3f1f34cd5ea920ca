package hub_test

// Faults: a bounded PostgreSQL pool under a burst, a store that fails
// cursor writes, a hook that hangs, a slow consumer in a big fan-out. In
// each, the others keep flowing, the affected client gets a coded error or
// a clean close, and nothing acknowledged is lost.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
	"github.com/leanhub/realtime/store"
)

// A burst of sends and history reads from many sockets on a PostgreSQL
// store whose pool is bounded at 2: every send is acknowledged (or refused
// with a code), the pool never has more connections than its bound, and
// every acknowledged message is stored once.
func TestPostgresPoolBoundHoldsUnderABurst(t *testing.T) {
	dsn := os.Getenv("REALTIME_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("REALTIME_TEST_POSTGRES_DSN is not set: PostgreSQL test skipped")
	}
	app := fmt.Sprintf("leanhub-pool-%d", time.Now().UnixNano())
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	st, err := store.Open(context.Background(), dsn+sep+"application_name="+app, &store.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	probe, err := store.Open(context.Background(), dsn, &store.Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { probe.Close() })
	srv := newServer(t, st, &hub.Config{Limits: hub.Limits{SendRate: 1e6, SendBurst: 1e6}})
	ctx := ctxT(t)
	prefix := fmt.Sprintf("%x-", time.Now().UnixNano()&0xffffff)

	// Watch the pool from another connection while the burst runs.
	var peak atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			var n int64
			if err := probe.DB().NewRaw("SELECT count(*) FROM pg_stat_activity WHERE application_name = ?", app).Scan(ctx, &n); err == nil && n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	const clients, perClient = 20, 10
	var wg sync.WaitGroup
	var acked sync.Map
	errs := make(chan error, clients*perClient)
	peer := srv.Login(t, prefix+"peer")
	for i := 0; i < clients; i++ {
		c := srv.Login(t, fmt.Sprintf("%sc%d", prefix, i))
		cid, err := c.StartConversation(ctx, prefix+"peer")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < perClient; k++ {
				r, err := c.SendText(ctx, cid, fmt.Sprintf("m%d", k))
				if err != nil {
					var e *realtime.Error
					if !errors.As(err, &e) {
						errs <- fmt.Errorf("send: uncoded failure %v", err)
					}
					continue
				}
				acked.Store(r.ID, cid)
				if _, err := c.History(ctx, &wire.LogsCommand{Cid: proto.String(cid), L: proto.Int32(5)}); err != nil {
					errs <- fmt.Errorf("history: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-watched
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p := peak.Load(); p > 2 || p == 0 {
		t.Errorf("the pool had %d connections at its busiest, bound 2 (0: the watch saw none)", p)
	}
	n := 0
	acked.Range(func(id, cid any) bool {
		n++
		m, err := srv.Hub.Store().GetMessage(ctx, cid.(string), id.(string))
		if err != nil || m.ID != id {
			t.Errorf("acked message %v not stored: %v", id, err)
		}
		return true
	})
	if n != clients*perClient {
		t.Errorf("%d of %d sends acked", n, clients*perClient)
	}
	_ = peer
}

// failingCursors is a store whose cursor writes fail while failing is set.
type failingCursors struct {
	realtime.Store
	failing atomic.Bool
	calls   atomic.Int32
}

func (f *failingCursors) UpdateCursors(ctx context.Context, cs []realtime.Cursor) error {
	f.calls.Add(1)
	if f.failing.Load() {
		return errors.New("injected: cursor write failed")
	}
	return f.Store.UpdateCursors(ctx, cs)
}

// While the store refuses cursor writes, messages still flow and reads
// still answer from memory; once it recovers, the pending moves land, so a
// client logging in later sees what it read as read.
func TestCursorWriterStoreErrorsDoNotStopTraffic(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			fs := &failingCursors{Store: open(t)}
			fs.failing.Store(true)
			srv := newServer(t, fs, nil)
			ctx := ctxT(t)
			id := func(s string) string { return fmt.Sprintf("%x-%s", time.Now().UnixNano()&0xffffff, s) }
			tom, jerry := id("Tom"), id("Jerry")
			tc := srv.Login(t, tom)
			jc := srv.Login(t, jerry)
			cid, err := tc.StartConversation(ctx, jerry)
			if err != nil {
				t.Fatal(err)
			}
			var last lcclient.SendResult
			for i := 0; i < 5; i++ {
				if last, err = tc.SendText(ctx, cid, fmt.Sprint(i)); err != nil {
					t.Fatalf("send while cursor writes fail: %v", err)
				}
				m, err := jc.NextMessage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := jc.Ack(ctx, cid, m.Timestamp, m.Timestamp); err != nil {
					t.Fatal(err)
				}
			}
			if err := jc.Read(ctx, cid, 0); err != nil {
				t.Fatal(err)
			}
			// Wait (bounded) for the writer to have tried and failed.
			for fs.calls.Load() == 0 {
				select {
				case <-ctx.Done():
					t.Fatal("cursor writer never tried")
				case <-time.After(10 * time.Millisecond):
				}
			}
			fs.failing.Store(false)
			// The hub's view already counts the read; the store gets it on
			// a retry.
			deadline := time.Now().Add(10 * time.Second)
			for {
				ms, err := fs.Store.Members(ctx, cid)
				if err != nil {
					t.Fatal(err)
				}
				var readAt int64
				for _, m := range ms {
					if m.ClientID == jerry {
						readAt = m.ReadAt
					}
				}
				if readAt == last.Timestamp {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the read never reached the store after it recovered (read at %d, want %d)", readAt, last.Timestamp)
				}
				time.Sleep(20 * time.Millisecond)
			}
			// A new device of Jerry gets no unread count for what he read.
			j2 := srv.Login(t, jerry)
			noMore(t, j2, wire.CommandType_unread, "unread of a conversation read while cursor writes failed")
		})
	}
}

// A hook that hangs on one conversation delays only that conversation:
// the same socket's messages to another conversation flow meanwhile, and
// the hung send gets its answer at the hook deadline.
func TestHangingHookDelaysOnlyItsConversation(t *testing.T) {
	var release blocker
	hang := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
		if strings.Contains(ev.Message.Data, "hang") {
			release.wait() // ignores ctx on purpose
		}
		return nil, nil
	})
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		release.arm(t)
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		slowConv, _ := tom.StartConversation(ctx, id("Jerry"))
		fastConv, _ := tom.StartConversationWith(ctx, &wire.ConvCommand{M: []string{id("Tom"), id("Jerry"), id("Kate")}})
		hung := make(chan error, 1)
		go func() {
			_, err := tom.SendText(ctx, slowConv, "hang")
			hung <- err
		}()
		// While that hook hangs, the other conversation's sends from the
		// same socket are acked and delivered.
		for i := 0; i < 3; i++ {
			if _, err := tom.SendText(ctx, fastConv, fmt.Sprint("fast ", i)); err != nil {
				t.Fatalf("send to another conversation while a hook hangs: %v", err)
			}
			if m, err := jerry.NextMessage(ctx); err != nil || m.ConvID != fastConv {
				t.Fatalf("delivery while a hook hangs: %+v, %v", m, err)
			}
		}
		// The hung send is answered at the deadline (ignore policy: it
		// goes through unchanged).
		if err := <-hung; err != nil {
			t.Fatalf("send past a hanging hook: %v", err)
		}
	}, &hub.Config{Hooks: []any{hang}, HookTimeout: 200 * time.Millisecond})
}

// In a 1,000-member fan-out, a member whose socket never reads is closed as
// a slow consumer, and every other member gets every message, in order. The
// slow member's queue is filled faster through a flood of transient
// messages in a second conversation, while the fan-out runs.
func TestSlowConsumerInALargeFanout(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 sockets: skipped with -short")
	}
	const members, messages = 1000, 50
	st := backends(t)["sqlite"](t)
	srv := newServer(t, st, &hub.Config{WriteTimeout: 500 * time.Millisecond,
		Limits: hub.Limits{MaxMembers: members + 2, SendRate: 1e6, SendBurst: 1e6, OutboundQueue: 64}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sender := srv.Login(t, "sender")
	ids := make([]string, members)
	clients := make([]*lcclient.Client, members)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%04d", i)
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			clients[i] = srv.Login(t, ids[i])
		}(i)
	}
	wg.Wait()
	// The slow member: a raw socket that logs in and never reads again.
	slow, _, err := websocket.Dial(ctx, srv.WebsocketURL(), &websocket.DialOptions{Subprotocols: []string{wire.ProtocolBinary}})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	open, _ := proto.Marshal(&wire.GenericCommand{Cmd: wire.CommandType_session.Enum(), Op: wire.OpType_open.Enum(), I: proto.Int32(1),
		AppId: proto.String(srv.AppID), PeerId: proto.String("slow"), SessionMessage: &wire.SessionCommand{}})
	if err := slow.Write(ctx, websocket.MessageBinary, open); err != nil {
		t.Fatal(err)
	}
	for !srv.Hub.Online("slow") {
		select {
		case <-ctx.Done():
			t.Fatal("slow client never logged in")
		case <-time.After(5 * time.Millisecond):
		}
	}
	group, err := sender.StartConversationWith(ctx, &wire.ConvCommand{M: append([]string{"sender", "slow"}, ids...)})
	if err != nil {
		t.Fatal(err)
	}
	// The flood comes from a client with no session, so only the slow
	// member's socket gets it.
	flood, _, err := srv.Hub.CreateConversation(ctx, &realtime.Conversation{Creator: "flooder", Members: []string{"slow"}})
	if err != nil {
		t.Fatal(err)
	}
	floodDone := make(chan int)
	go func() {
		body := text(strings.Repeat("x", 4000))
		n := 0
		for srv.Hub.Online("slow") && n < 50000 && ctx.Err() == nil {
			srv.Hub.Send(ctx, &realtime.Message{ConvID: flood.ID, From: "flooder", Data: body}, &hub.SendOptions{Transient: true})
			n++
		}
		floodDone <- n
	}()
	for k := 0; k < messages; k++ {
		if _, err := sender.SendText(ctx, group, fmt.Sprint("fan-out ", k)); err != nil {
			t.Fatalf("send %d: %v", k, err)
		}
	}
	for i, c := range clients {
		for k := 0; k < messages; k++ {
			m, err := c.NextMessage(ctx)
			if err != nil {
				t.Fatalf("member %s message %d: %v", ids[i], k, err)
			}
			if want := text(fmt.Sprint("fan-out ", k)); m.Data != want {
				t.Fatalf("member %s message %d: got %q", ids[i], k, m.Data)
			}
		}
	}
	if n := <-floodDone; srv.Hub.Online("slow") {
		t.Fatalf("a member that never reads is still online after %d flood messages", n)
	}
}

// blockingCursors is a store whose cursor writes wait until released.
type blockingCursors struct {
	realtime.Store
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingCursors) UpdateCursors(ctx context.Context, cs []realtime.Cursor) error {
	b.once.Do(func() { close(b.entered) })
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.Store.UpdateCursors(ctx, cs)
}

// A read whose write to the store is under way counts for a login sync
// meanwhile: the in-flight moves are overlaid like the queued ones.
func TestReadBeingWrittenCountsForLoginSync(t *testing.T) {
	st := &blockingCursors{Store: backends(t)["sqlite"](t), entered: make(chan struct{}), release: make(chan struct{})}
	srv := newServer(t, st, nil)
	defer close(st.release)
	ctx := ctxT(t)
	tom := srv.Login(t, "Tom")
	jerry := srv.Login(t, "Jerry")
	cid, _ := jerry.StartConversation(ctx, "Tom")
	for i := 0; i < 2; i++ {
		if _, err := jerry.SendText(ctx, cid, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := tom.NextMessage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := tom.Read(ctx, cid, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-st.entered:
	case <-ctx.Done():
		t.Fatal("the cursor write never started")
	}
	tom2 := srv.Login(t, "Tom")
	noMore(t, tom2, wire.CommandType_unread, "an unread count for a conversation read while its write is under way")
}

// staleRead is a store whose unread read takes its snapshot before a read
// cursor is written and answers after the write completed: the overlay of
// pending moves must still count what the snapshot missed.
type staleRead struct {
	realtime.Store
	client   string
	armed    atomic.Bool
	readDone chan struct{}
	written  chan struct{}
	once     sync.Once
}

func (s *staleRead) Unread(ctx context.Context, clientID string, since int64, limit int) ([]realtime.UnreadTuple, error) {
	u, err := s.Store.Unread(ctx, clientID, since, limit)
	if clientID != s.client || !s.armed.Load() {
		return u, err
	}
	close(s.readDone)
	select {
	case <-s.written:
	case <-ctx.Done():
	}
	return u, err
}

func (s *staleRead) UpdateCursors(ctx context.Context, cs []realtime.Cursor) error {
	reads := false
	for _, c := range cs {
		reads = reads || (c.ClientID == s.client && c.ReadSeq > 0)
	}
	if !reads || !s.armed.Load() {
		return s.Store.UpdateCursors(ctx, cs)
	}
	select {
	case <-s.readDone:
	case <-ctx.Done():
	}
	err := s.Store.UpdateCursors(ctx, cs)
	s.once.Do(func() { close(s.written) })
	return err
}

func TestUnreadReadBeforeCursorWriteCountsTheRead(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			id := func(s string) string { return fmt.Sprintf("%x-%s", time.Now().UnixNano()&0xffffff, s) }
			tom, jerry := id("Tom"), id("Jerry")
			st := &staleRead{Store: open(t), client: tom, readDone: make(chan struct{}), written: make(chan struct{})}
			srv := newServer(t, st, nil)
			ctx := ctxT(t)
			tc := srv.Login(t, tom)
			jc := srv.Login(t, jerry)
			cid, err := jc.StartConversation(ctx, tom)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{"1", "2"} {
				if _, err := jc.SendText(ctx, cid, s); err != nil {
					t.Fatal(err)
				}
				if _, err := tc.NextMessage(ctx); err != nil {
					t.Fatal(err)
				}
			}
			st.armed.Store(true)
			if err := tc.Read(ctx, cid, 0); err != nil {
				t.Fatal(err)
			}
			u, err := srv.Hub.Store().Unread(ctx, tom, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-st.written:
			default:
				t.Fatal("the read was answered before the cursor was written: the test did not set the scene")
			}
			for _, x := range u {
				if x.ConvID == cid {
					t.Fatalf("a conversation read to its newest message counts %d unread", x.Unread)
				}
			}
		})
	}
}

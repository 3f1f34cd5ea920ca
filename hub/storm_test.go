package hub_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

// A reconnect storm larger than the login admission (MaxConcurrentSyncs 2,
// 120 clients at once) is served completely: every client gets exactly one
// unread notification with the right count, last message and mention flag
// for each conversation with something new since its lastUnreadNotifTime,
// and the edits since its lastPatchTime; meanwhile a pair of clients that
// stayed connected keeps chatting.
func TestReconnectStormIsServedCompletely(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		const clients, convsPer, unreadPer = 120, 4, 2
		type conv struct {
			id      string
			last    *realtime.Message
			unread  int
			mention bool
		}
		want := make([][]conv, clients)
		tokens := make([]string, clients)
		ids := make([]string, clients)
		// Each client logs in once (for its token), then drops.
		for i := range ids {
			ids[i] = id(fmt.Sprintf("c%03d", i))
			c := srv.Login(t, ids[i])
			tok, err := c.Open(ctx, ids[i], lcclient.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tokens[i] = tok
			c.Close()
		}
		notifTime := time.Now().UnixMilli()
		time.Sleep(5 * time.Millisecond)
		// While they are away: in each of its conversations the peer
		// writes; two conversations per client get unread messages, one
		// of them mentioning it; one message of each is edited.
		var edited []*realtime.Message
		for i := range ids {
			for k := 0; k < convsPer; k++ {
				peer := id(fmt.Sprintf("peer%d", k))
				c, _, err := srv.Hub.CreateConversation(ctx, &realtime.Conversation{Creator: peer, Members: []string{ids[i]},
					Name: fmt.Sprintf("%d-%d", i, k)})
				if err != nil {
					t.Fatal(err)
				}
				cv := conv{id: c.ID}
				if k < unreadPer {
					for n := 0; n <= k; n++ {
						m := &realtime.Message{ConvID: c.ID, From: peer, Data: text(fmt.Sprint("m", n))}
						if k == 1 && n == 0 {
							m.MentionPids = []string{ids[i]}
							cv.mention = true
						}
						if cv.last, err = srv.Hub.Send(ctx, m, nil); err != nil {
							t.Fatal(err)
						}
						cv.unread++
					}
					if k == 0 {
						e, err := srv.Hub.Edit(ctx, c.ID, cv.last.ID, text("edited"), 0, "")
						if err != nil {
							t.Fatal(err)
						}
						cv.last = e
						edited = append(edited, e)
					}
				}
				want[i] = append(want[i], cv)
			}
		}
		// Two clients that stay connected, chatting through the storm.
		a, b := srv.Login(t, id("steadyA")), srv.Login(t, id("steadyB"))
		steady, _ := a.StartConversation(ctx, id("steadyB"))
		stop := make(chan struct{})
		steadyErr := make(chan error, 1)
		go func() {
			defer close(steadyErr)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := a.SendText(ctx, steady, fmt.Sprint(n)); err != nil {
					steadyErr <- err
					return
				}
				if _, err := b.NextMessage(ctx); err != nil {
					steadyErr <- err
					return
				}
			}
		}()

		// The storm: everyone reconnects at once with its token.
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := range ids {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				c, err := lcclient.Dial(ctx, srv.WebsocketURL())
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				c.AppID = srv.AppID
				if _, err := c.Open(ctx, ids[i], lcclient.OpenOptions{Reconnect: true, SessionToken: tokens[i],
					LastUnreadNotifTime: notifTime, LastPatchTime: notifTime}); err != nil {
					errs <- fmt.Errorf("%s: reconnect: %v", ids[i], err)
					return
				}
				var unread, patches []*wire.GenericCommand
				for len(unread) == 0 || len(patches) == 0 {
					p, err := c.Next(ctx)
					if err != nil {
						errs <- fmt.Errorf("%s: waiting for its sync: %v", ids[i], err)
						return
					}
					switch p.GetCmd() {
					case wire.CommandType_unread:
						unread = append(unread, p)
					case wire.CommandType_patch:
						patches = append(patches, p)
					}
				}
				got := map[string]*wire.UnreadTuple{}
				for _, tu := range unread[0].GetUnreadMessage().GetConvs() {
					got[tu.GetCid()] = tu
				}
				for _, cv := range want[i] {
					tu, ok := got[cv.id]
					if cv.unread == 0 {
						if ok {
							errs <- fmt.Errorf("%s: unread tuple for a conversation with nothing new: %v", ids[i], tu)
						}
						continue
					}
					if !ok || int(tu.GetUnread()) != cv.unread || tu.GetMid() != cv.last.ID || tu.GetMentioned() != cv.mention {
						errs <- fmt.Errorf("%s: conversation %s: tuple %v, want unread %d last %s mentioned %v", ids[i], cv.id, tu, cv.unread, cv.last.ID, cv.mention)
					}
				}
				if n := len(patches[0].GetPatchMessage().GetPatches()); n != 1 {
					errs <- fmt.Errorf("%s: %d patches replayed, want 1", ids[i], n)
				}
				// No second notification arrives.
				nctx, ncancel := context.WithTimeout(ctx, 200*time.Millisecond)
				defer ncancel()
				if p, err := c.NextOf(nctx, wire.CommandType_unread); err == nil {
					errs <- fmt.Errorf("%s: a second unread notification %v", ids[i], p)
				}
			}(i)
		}
		wg.Wait()
		close(stop)
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if err := <-steadyErr; err != nil {
			t.Fatalf("a client that stayed connected stalled during the storm: %v", err)
		}
		if len(edited) != clients {
			t.Fatalf("%d edits", len(edited))
		}
	}, &hub.Config{Limits: hub.Limits{MaxConcurrentSyncs: 2, SendRate: 1e6, SendBurst: 1e6}})
}

// flakyUnread is a store whose Unread fails the first `fail` calls (or
// always, with fail < 0).
type flakyUnread struct {
	realtime.Store
	mu   sync.Mutex
	fail int
}

func (f *flakyUnread) Unread(ctx context.Context, clientID string, since int64, limit int) ([]realtime.UnreadTuple, error) {
	f.mu.Lock()
	fail := f.fail != 0
	if f.fail > 0 {
		f.fail--
	}
	f.mu.Unlock()
	if fail {
		return nil, fmt.Errorf("injected: unread failed")
	}
	return f.Store.Unread(ctx, clientID, since, limit)
}

// A login whose sync fails never leaves the client silently without its
// counts: the hub retries within the login, and when the store keeps
// failing it closes the socket with 1011 (the SDK reconnects and asks
// again).
func TestLoginSyncFailureIsRetriedOrCloses(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail int
	}{{"fails twice", 2}, {"keeps failing", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			st := &flakyUnread{Store: backends(t)["sqlite"](t)}
			srv := newServer(t, st, nil)
			ctx := ctxT(t)
			c, _, err := srv.Hub.CreateConversation(ctx, &realtime.Conversation{Creator: "peer", Members: []string{"me"}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := srv.Hub.Send(ctx, &realtime.Message{ConvID: c.ID, From: "peer", Data: text("while away")}, nil); err != nil {
				t.Fatal(err)
			}
			st.mu.Lock()
			st.fail = tc.fail
			st.mu.Unlock()
			me := srv.Login(t, "me")
			if tc.fail > 0 {
				p, err := me.NextOf(ctx, wire.CommandType_unread)
				if err != nil || len(p.GetUnreadMessage().GetConvs()) != 1 {
					t.Fatalf("unread after retries: %v, %v", p, err)
				}
				return
			}
			select {
			case <-me.Done():
			case <-ctx.Done():
				t.Fatal("a login whose sync keeps failing was neither served nor closed")
			}
			if s := me.CloseStatus(); s != 1011 {
				t.Fatalf("closed with %v, want 1011", s)
			}
		})
	}
}

package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

func TestMaxMembersOnStartAndAdd(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		// Four with the creator: one too many.
		_, err := tom.StartConversation(ctx, id("A"), id("B"), id("C"))
		wantCode(t, err, realtime.CodeConvFull, "start with 4 members, limit 3")
		cid, err := tom.StartConversation(ctx, id("A"), id("B"))
		if err != nil {
			t.Fatalf("start with 3 members: %v", err)
		}
		_, err = convRequest(ctx, tom, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("C")}})
		wantCode(t, err, realtime.CodeConvFull, "add a 4th member")
		res, err := convRequest(ctx, tom, wire.OpType_members, &wire.ConvCommand{Cid: proto.String(cid)})
		if err != nil || len(res.GetConvMessage().GetM()) != 3 {
			t.Fatalf("members after refused add: %v, %v", res, err)
		}
		// After one leaves there is room again.
		if _, err := convRequest(ctx, tom, wire.OpType_remove, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("A")}}); err != nil {
			t.Fatal(err)
		}
		if _, err := convRequest(ctx, tom, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("C")}}); err != nil {
			t.Fatalf("add after a removal: %v", err)
		}
	}, &hub.Config{Limits: hub.Limits{MaxMembers: 3}})
}

func TestMaxSessionsPerSocket(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		c := dialApp(t, srv, srv.AppID)
		for _, who := range []string{"A", "B"} {
			if _, err := c.Open(ctx, id(who), lcclient.OpenOptions{}); err != nil {
				t.Fatalf("open %s: %v", who, err)
			}
		}
		_, err := c.Open(ctx, id("C"), lcclient.OpenOptions{})
		wantCode(t, err, realtime.CodeInvalidLogin, "third client on a socket limited to 2")
		if srv.Hub.Online(id("C")) {
			t.Fatal("refused client is online")
		}
		// Re-opening an existing one is not a new session.
		if _, err := c.Open(ctx, id("A"), lcclient.OpenOptions{}); err != nil {
			t.Fatalf("re-open A: %v", err)
		}
		// Both sessions still work, addressed by peerId.
		c.ClientID = id("A")
		cid, err := c.StartConversation(ctx, id("B"))
		if err != nil {
			t.Fatal(err)
		}
		c.ClientID = id("B")
		if _, err := c.SendText(ctx, cid, "from B"); err != nil {
			t.Fatalf("send as B: %v", err)
		}
		// Another socket may still log C in.
		srv.Login(t, id("C"))
	}, &hub.Config{Limits: hub.Limits{MaxSessionsPerSocket: 2}})
}

func queryConvs(t *testing.T, ctx context.Context, c *lcclient.Client, cm *wire.ConvCommand) []map[string]any {
	t.Helper()
	res, err := convRequest(ctx, c, wire.OpType_query, cm)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	var out []map[string]any
	if err := json.Unmarshal([]byte(res.GetConvMessage().GetResults().GetData()), &out); err != nil {
		t.Fatalf("query results %q: %v", res.GetConvMessage().GetResults().GetData(), err)
	}
	return out
}

func TestMaxQueryLimitCapsResults(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		for i := range 4 {
			if _, err := tom.StartConversation(ctx, id(fmt.Sprint("friend", i))); err != nil {
				t.Fatal(err)
			}
		}
		for _, limit := range []int32{0, 3, 100} {
			cm := &wire.ConvCommand{}
			if limit > 0 {
				cm.Limit = proto.Int32(limit)
			}
			if got := queryConvs(t, ctx, tom, cm); len(got) != 2 {
				t.Fatalf("query with limit %d returned %d conversations, want the cap of 2", limit, len(got))
			}
		}
		// Paging past the cap reaches the rest.
		if got := queryConvs(t, ctx, tom, &wire.ConvCommand{Limit: proto.Int32(10), Skip: proto.Int32(2)}); len(got) != 2 {
			t.Fatalf("second page: %d conversations", len(got))
		}
	}, &hub.Config{Limits: hub.Limits{MaxQueryLimit: 2}})
}

func TestMaxMentions(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"), id("Kate"), id("Spike"))
		send := func(ids ...string) error {
			_, err := tom.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(text("@all of you")), MentionPids: ids})
			return err
		}
		wantCode(t, send(id("Jerry"), id("Kate"), id("Spike")), realtime.CodeInvalidMessage, "3 mentions, limit 2")
		noMore(t, jerry, wire.CommandType_direct, "refused message")
		if err := send(id("Jerry"), id("Kate")); err != nil {
			t.Fatalf("2 mentions: %v", err)
		}
		m, err := jerry.NextMessage(ctx)
		if err != nil || len(m.MentionPids) != 2 {
			t.Fatalf("delivered %+v, %v", m, err)
		}
	}, &hub.Config{Limits: hub.Limits{MaxMentions: 2}})
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSlowConsumerIsClosedOthersGoOn(t *testing.T) {
	logs := &syncBuffer{}
	cfg := &hub.Config{
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		WriteTimeout: 500 * time.Millisecond,
		Limits:       hub.Limits{OutboundQueue: 8},
	}
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		// A raw socket that opens a session and then never reads.
		ws, _, err := websocket.Dial(ctx, srv.WebsocketURL(), &websocket.DialOptions{Subprotocols: []string{wire.ProtocolBinary}})
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		open, _ := proto.Marshal(&wire.GenericCommand{Cmd: wire.CommandType_session.Enum(), Op: wire.OpType_open.Enum(),
			AppId: proto.String(srv.AppID), PeerId: proto.String(id("Slow")), I: proto.Int32(1), SessionMessage: &wire.SessionCommand{}})
		if err := ws.Write(ctx, websocket.MessageBinary, open); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !srv.Hub.Online(id("Slow")) {
			if time.Now().After(deadline) {
				t.Fatal("slow client never logged in")
			}
			time.Sleep(5 * time.Millisecond)
		}

		tom := srv.Login(t, id("Tom"))
		flood, err := tom.StartConversation(ctx, id("Slow"))
		if err != nil {
			t.Fatal(err)
		}
		if err := tom.Logout(ctx); err != nil { // Tom's own socket is not flooded
			t.Fatal(err)
		}
		body := text(strings.Repeat("x", 4000))
		// The log is shared by the backends' runs: count new lines only.
		slowLogs := func() int { return strings.Count(logs.String(), "slow consumer") }
		before := slowLogs()
		sent := 0
		for slowLogs() == before && sent < 50000 {
			if _, err := srv.Hub.Send(ctx, &realtime.Message{ConvID: flood, From: id("Tom"), Data: body}, &hub.SendOptions{Transient: true}); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		// Closing may wait for one write to time out (WriteTimeout).
		deadline = time.Now().Add(10 * time.Second)
		for srv.Hub.Online(id("Slow")) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if srv.Hub.Online(id("Slow")) {
			t.Fatalf("a client that never reads is still online after %d messages", sent)
		}
		if slowLogs() == before {
			t.Fatalf("socket closed, but not as a slow consumer; log:\n%s", logs.String())
		}
		// The hub and other clients keep working.
		jerry := srv.Login(t, id("Jerry"))
		kate := srv.Login(t, id("Kate"))
		cid, err := jerry.StartConversation(ctx, id("Kate"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jerry.SendText(ctx, cid, "still here"); err != nil {
			t.Fatal(err)
		}
		if m, err := kate.NextMessage(ctx); err != nil || m.Data != text("still here") {
			t.Fatalf("after the slow consumer: %+v, %v", m, err)
		}
	}, cfg)
}

func TestLoginTimeoutClosesWith4108(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		idle, err := lcclient.Dial(ctx, srv.WebsocketURL())
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		active := dialApp(t, srv, srv.AppID)
		if _, err := active.Open(ctx, id("Tom"), lcclient.OpenOptions{}); err != nil {
			t.Fatal(err)
		}
		// An echo is not a login.
		if _, err := idle.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_echo.Enum()}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-idle.Done():
		case <-ctx.Done():
			t.Fatal("socket without login not closed")
		}
		if got := idle.CloseStatus(); got != websocket.StatusCode(realtime.CodeLoginTimeout) {
			t.Fatalf("close status = %v, want 4108", got)
		}
		// The logged-in socket stays past the timeout.
		time.Sleep(400 * time.Millisecond)
		if _, err := active.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_echo.Enum()}); err != nil {
			t.Fatalf("logged-in socket after the login timeout: %v", err)
		}
	}, &hub.Config{LoginTimeout: 300 * time.Millisecond})
}

func TestReaddingExistingMemberToFullConversation(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		cid, err := tom.StartConversation(ctx, id("A"), id("B"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := convRequest(ctx, tom, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("A")}}); err != nil {
			t.Fatalf("re-adding a member of a full conversation: %v; want success (nothing added)", err)
		}
	}, &hub.Config{Limits: hub.Limits{MaxMembers: 3}})
}

func TestSendRateLimit(t *testing.T) {
	st := backends(t)["sqlite"](t)
	srv := newServer(t, st, &hub.Config{Limits: hub.Limits{SendRate: 1, SendBurst: 2}})
	ctx := ctxT(t)
	tom := srv.Login(t, "Tom")
	cid, _ := tom.StartConversation(ctx, "Jerry")
	var limited bool
	for i := 0; i < 5; i++ {
		if _, err := tom.SendText(ctx, cid, "spam"); errors.Is(err, realtime.ErrRateLimited) {
			limited = true
		}
	}
	if !limited {
		t.Fatal("5 sends at once with a burst of 2 were not limited")
	}
}

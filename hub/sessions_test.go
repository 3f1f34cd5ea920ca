package hub_test

import (
	"errors"
	"testing"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

func TestReplacingOneDevicesSessionKeepsOtherClientsOnItsSocket(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		shared, err := lcclient.Dial(ctx, srv.WebsocketURL())
		if err != nil {
			t.Fatal(err)
		}
		defer shared.Close()
		st, err := shared.Open(ctx, id("Tom"), lcclient.OpenOptions{Tag: "Mobile", DeviceID: "phone"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := shared.Open(ctx, id("Kate"), lcclient.OpenOptions{}); err != nil {
			t.Fatal(err)
		}
		// Tom's phone reconnects on a new socket before the hub noticed the
		// old one died: the old session is replaced, Kate's stays.
		fresh, err := lcclient.Dial(ctx, srv.WebsocketURL())
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		if _, err := fresh.Open(ctx, id("Tom"), lcclient.OpenOptions{Reconnect: true, SessionToken: st}); err != nil {
			t.Fatal(err)
		}
		if _, err := shared.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_echo.Enum()}); err != nil {
			t.Fatalf("shared socket closed with Tom's old session: %v", err)
		}
		if !srv.Hub.Online(id("Kate")) {
			t.Fatal("Kate went offline")
		}
	}, nil)
}

func TestConflictSameTagKicksOlderDifferentTagsStay(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		dial := func() *lcclient.Client {
			c, err := lcclient.Dial(ctx, srv.WebsocketURL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			return c
		}
		a, b, web := dial(), dial(), dial()
		stA, err := a.Open(ctx, id("Tom"), lcclient.OpenOptions{Tag: "Mobile", DeviceID: "phone-1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := web.Open(ctx, id("Tom"), lcclient.OpenOptions{Tag: "Web"}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Open(ctx, id("Tom"), lcclient.OpenOptions{Tag: "Mobile", DeviceID: "phone-2"}); err != nil {
			t.Fatal(err)
		}
		p, err := a.NextOf(ctx, wire.CommandType_session)
		if err != nil || p.GetOp() != wire.OpType_closed || p.GetSessionMessage().GetCode() != realtime.CodeSessionConflict || p.GetSessionMessage().GetReason() == "" {
			t.Fatalf("older device got %v, %v; want session closed 4111 with a reason", p, err)
		}
		noMore(t, web, wire.CommandType_session, "the Web device must stay")
		// The kicked device's automatic re-login is refused, in the reply:
		// its token was voided by the kick (4112)...
		a2 := dial()
		if _, err := a2.Open(ctx, id("Tom"), lcclient.OpenOptions{Reconnect: true, SessionToken: stA}); !errors.Is(err, realtime.ErrSessionTokenExpired) {
			t.Fatalf("re-login with the kicked device's token: %v", err)
		}
		// Without a token (what the SDK retries with after 4112) too.
		if _, err := a2.Open(ctx, id("Tom"), lcclient.OpenOptions{Reconnect: true}); !errors.Is(err, realtime.ErrSessionConflict) {
			t.Fatalf("conflicting re-login without token: %v", err)
		}
		// A bad token is 4112.
		if _, err := a2.Open(ctx, id("Tom"), lcclient.OpenOptions{Reconnect: true, SessionToken: "forged.token"}); !errors.Is(err, realtime.ErrSessionTokenExpired) {
			t.Fatalf("forged token: %v", err)
		}
		// Both remaining devices get messages to Tom.
		jerry := srv.Login(t, id("Jerry"))
		cid, err := jerry.StartConversation(ctx, id("Tom"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jerry.SendText(ctx, cid, "to all of Tom"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*lcclient.Client{b, web} {
			if m, err := c.NextMessage(ctx); err != nil || m.Data != text("to all of Tom") {
				t.Fatalf("device missed the message: %v, %v", m, err)
			}
		}
		// A message from one device appears on the other.
		if _, err := b.SendText(ctx, cid, "from the phone"); err != nil {
			t.Fatal(err)
		}
		if m, err := web.NextMessage(ctx); err != nil || m.From != id("Tom") || m.Data != text("from the phone") {
			t.Fatalf("other device: %v, %v", m, err)
		}
	}, nil)
}

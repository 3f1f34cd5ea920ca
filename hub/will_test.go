package hub_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/leanhub/realtime/hooks"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

func TestWillMessagesPassTheKeywordFilter(t *testing.T) {
	filter := hooks.NewKeywordFilter([]string{"badword"}, nil)
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		jerry := srv.Login(t, id("Jerry"))
		tom := srv.Login(t, id("Tom"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		if _, err := tom.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(text("bye badword")), Will: proto.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		tom.Close()
		m, err := jerry.NextMessage(ctx)
		if err != nil || m.Data != text("bye ***") {
			t.Fatalf("will = %v, %v; want the filtered text", m, err)
		}
	}, &hub.Config{Hooks: []any{filter}})
}

func TestWillSentOnDropNotOnLogout(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		jerry := srv.Login(t, id("Jerry"))
		tom := srv.Login(t, id("Tom"))
		cid, err := tom.StartConversation(ctx, id("Jerry"))
		if err != nil {
			t.Fatal(err)
		}
		will := func(c *lcclient.Client, body string) {
			t.Helper()
			if _, err := c.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(text(body)), Will: proto.Bool(true)}); err != nil {
				t.Fatal(err)
			}
		}
		will(tom, "first will")
		will(tom, "Tom is offline")
		noMore(t, jerry, wire.CommandType_direct, "a will is not delivered when set")
		tom.Close() // network drop
		m, err := jerry.NextMessage(ctx)
		if err != nil || m.Data != text("Tom is offline") || m.From != id("Tom") {
			t.Fatalf("will = %v, %v", m, err)
		}
		noMore(t, jerry, wire.CommandType_direct, "only the last will")
		logs, _ := jerry.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
		if len(logs) != 0 {
			t.Fatalf("will stored in history: %v", logs)
		}
		// Logout clears it.
		tom2 := srv.Login(t, id("Tom"))
		will(tom2, "never sent")
		if err := tom2.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		tom2.Close()
		noMore(t, jerry, wire.CommandType_direct, "will after logout")
	}, nil)
}

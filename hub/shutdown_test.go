package hub_test

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

func TestShutdownSendsGoawayClosesSocketsAndKeepsWills(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		if _, err := tom.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(text("will")), Will: proto.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := srv.Hub.Shutdown(sctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		for _, c := range []*lcclient.Client{tom, jerry} {
			p, err := c.NextOf(ctx, wire.CommandType_goaway)
			if err != nil {
				t.Fatalf("no goaway before close: %v", err)
			}
			if p.GetService() != 2 {
				t.Fatalf("goaway push without service=2: %v", p)
			}
			select {
			case <-c.Done():
			case <-ctx.Done():
				t.Fatal("socket still open after Shutdown")
			}
			if s := c.CloseStatus(); s != websocket.StatusGoingAway {
				t.Fatalf("close status %v, want going away", s)
			}
		}
		// A shutdown is not the client going away: its will stays for the
		// next time it really drops.
		w, err := srv.store.TakeWill(ctx, id("Tom"))
		if err != nil || w == nil {
			t.Fatalf("will after shutdown = %v, %v", w, err)
		}
		// Shutdown is idempotent, and new sockets are refused.
		if err := srv.Hub.Shutdown(sctx); err != nil {
			t.Fatalf("second Shutdown: %v", err)
		}
		if _, err := lcclient.Dial(ctx, srv.WebsocketURL()); err == nil {
			t.Fatal("dial after Shutdown succeeded")
		}
	}, nil)
}

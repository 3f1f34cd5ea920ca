package hub_test

import (
	"errors"
	"testing"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/lcclient"
)

func TestGoAPISendAsClient(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		m, err := srv.Hub.Send(ctx, &realtime.Message{ConvID: cid, From: id("Tom"), Data: text("from Go")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []*lcclient.Client{jerry, tom} {
			got, err := c.NextMessage(ctx)
			if err != nil || got.ID != m.ID || got.Data != text("from Go") {
				t.Fatalf("Go API send: %v %v", got, err)
			}
		}
		if _, err := srv.Hub.Send(ctx, &realtime.Message{ConvID: cid, From: id("Stranger"), Data: "x"}, nil); !errors.Is(err, realtime.ErrInvalidTarget) {
			t.Fatalf("non-member Go send: %v", err)
		}
	}, nil)
}

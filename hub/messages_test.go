package hub_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/leanhub/realtime/internal/wire"
)

func TestTransientMessagesAreAckedDeliveredOnlineAndNeverStored(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"), id("Kate"))
		r, err := tom.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(text("typing")), Transient: proto.Bool(true)})
		if err != nil || r.ID == "" {
			t.Fatalf("transient ack: %+v, %v", r, err)
		}
		m, err := jerry.NextMessage(ctx)
		if err != nil || !m.Transient || m.Data != text("typing") {
			t.Fatalf("transient delivery: %+v, %v", m, err)
		}
		logs, _ := tom.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
		if len(logs) != 0 {
			t.Fatalf("transient message stored: %v", logs)
		}
		kate := srv.Login(t, id("Kate"))
		noMore(t, kate, wire.CommandType_unread, "transient messages are not unread")
	}, nil)
}

package hub_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/leanhub/realtime/internal/wire"
)

func TestPartialReadTellsOtherDevicesWhatIsLeft(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		first, _ := tom.SendText(ctx, cid, "one")
		tom.SendText(ctx, cid, "two")
		tom.SendText(ctx, cid, "three")
		phone := srv.Login(t, id("Jerry"))
		web := srv.Login(t, id("Jerry"))
		if _, err := web.NextOf(ctx, wire.CommandType_unread); err != nil {
			t.Fatal(err)
		}
		// The phone read only the first message.
		if err := phone.Read(ctx, cid, first.Timestamp); err != nil {
			t.Fatal(err)
		}
		p, err := web.NextOf(ctx, wire.CommandType_unread)
		if err != nil || p.GetUnreadMessage().GetConvs()[0].GetUnread() != 2 {
			t.Fatalf("other device after a partial read: %v, %v; want 2 left", p, err)
		}
	}, nil)
}

func TestReceiptsOneToOne(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		sent, err := tom.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(text("important")), R: proto.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		m, _ := jerry.NextMessage(ctx)
		jerry.Ack(ctx, cid, m.Timestamp, m.Timestamp)
		p, err := tom.NextOf(ctx, wire.CommandType_rcp)
		if err != nil || p.GetRcpMessage().GetRead() || p.GetRcpMessage().GetId() != sent.ID || p.GetRcpMessage().GetT() < sent.Timestamp {
			t.Fatalf("delivery receipt = %v, %v", p, err)
		}
		jerry.Read(ctx, cid, 0)
		p, err = tom.NextOf(ctx, wire.CommandType_rcp)
		if err != nil || !p.GetRcpMessage().GetRead() || p.GetRcpMessage().GetT() < sent.Timestamp || p.GetRcpMessage().GetFrom() != id("Jerry") {
			t.Fatalf("read receipt = %v, %v", p, err)
		}
		res, err := tom.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_max_read.Enum(), PeerId: proto.String(tom.ClientID),
			ConvMessage: &wire.ConvCommand{Cid: proto.String(cid)}})
		if err != nil || res.GetConvMessage().GetMaxAckTimestamp() < sent.Timestamp || res.GetConvMessage().GetMaxReadTimestamp() < sent.Timestamp {
			t.Fatalf("max_read = %v, %v", res, err)
		}
		d, r, err := srv.Hub.Receipts(ctx, cid, sent.ID)
		if err != nil || len(d) != 1 || len(r) != 1 || r[0] != id("Jerry") {
			t.Fatalf("Receipts = %v %v %v", d, r, err)
		}
	}, nil)
}

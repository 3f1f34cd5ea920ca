package hub_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

func TestChatRoomMembershipIsPresence(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		kate := srv.Login(t, id("Kate"))
		room, err := tom.StartConversationWith(ctx, &wire.ConvCommand{Transient: proto.Bool(true),
			Attr: &wire.JsonObjectMessage{Data: proto.String(`{"name":"lobby"}`)}})
		if err != nil {
			t.Fatal(err)
		}
		membership := func(c *lcclient.Client, op wire.OpType) {
			t.Helper()
			if _, err := c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: op.Enum(), PeerId: proto.String(c.ClientID),
				ConvMessage: &wire.ConvCommand{Cid: proto.String(room), M: []string{c.ClientID}}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := jerry.SendText(ctx, room, "not joined yet"); !errors.Is(err, realtime.ErrInvalidTarget) {
			t.Fatalf("send before joining: %v", err)
		}
		membership(jerry, wire.OpType_add)
		if _, err := tom.SendText(ctx, room, "welcome"); err != nil {
			t.Fatal(err)
		}
		if m, err := jerry.NextMessage(ctx); err != nil || m.Data != text("welcome") {
			t.Fatalf("room message: %v %v", m, err)
		}
		noMore(t, kate, wire.CommandType_direct, "Kate did not join")
		membership(jerry, wire.OpType_remove)
		tom.SendText(ctx, room, "after Jerry left")
		noMore(t, jerry, wire.CommandType_direct, "Jerry left")
		logs, err := kate.History(ctx, &wire.LogsCommand{Cid: proto.String(room)})
		if err != nil || len(logs) != 2 {
			t.Fatalf("room history for anyone: %v %v", logs, err)
		}
		if _, err := tom.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(room), Msg: proto.String(text("w")), Will: proto.Bool(true)}); !errors.Is(err, realtime.ErrInvalidMessage) {
			t.Fatalf("will in a chat room: %v", err)
		}
	}, nil)
}

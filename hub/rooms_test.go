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

func TestChatRoomMembersCannotAddOrKickOthers(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		eve := srv.Login(t, id("Eve"))
		room, err := eve.StartConversationWith(ctx, &wire.ConvCommand{Transient: proto.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range []wire.OpType{wire.OpType_add, wire.OpType_remove} {
			_, err := convRequest(ctx, eve, op, &wire.ConvCommand{Cid: proto.String(room), M: []string{id("Victim"), id("Ghost")}})
			if !errors.Is(err, realtime.ErrConvNotAllowed) {
				t.Fatalf("%s of others in a chat room: %v", op, err)
			}
		}
	}, nil)
}

func TestChatRoomEditsReachWhoJoined(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		room, _ := tom.StartConversationWith(ctx, &wire.ConvCommand{Transient: proto.Bool(true)})
		if _, err := convRequest(ctx, jerry, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(room), M: []string{id("Jerry")}}); err != nil {
			t.Fatal(err)
		}
		sent, _ := tom.SendText(ctx, room, "tpyo")
		if _, err := jerry.NextMessage(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := tom.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_patch.Enum(), Op: wire.OpType_modify.Enum(), PeerId: proto.String(tom.ClientID),
			PatchMessage: &wire.PatchCommand{Patches: []*wire.PatchItem{{Cid: proto.String(room), Mid: proto.String(sent.ID), Data: proto.String(text("typo"))}}}}); err != nil {
			t.Fatal(err)
		}
		p, err := jerry.NextOf(ctx, wire.CommandType_patch)
		if err != nil || p.GetPatchMessage().GetPatches()[0].GetData() != text("typo") {
			t.Fatalf("room edit push = %v, %v", p, err)
		}
	}, nil)
}

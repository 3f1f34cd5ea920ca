package hub_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hooks"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

// Regression tests for defects found by reviewing the hub.

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

func TestSignedJoinAndQuitSignTheClientItself(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := dialApp(t, srv, "app")
		ts := time.Now().UnixMilli()
		sig := func(msg string) string { return hub.Sign(testMasterKey, msg) }
		loginNonce := id("login")
		if _, err := tom.Open(ctx, id("Tom"), lcclient.OpenOptions{
			Signature: sig(hub.LoginSignatureMessage("app", id("Tom"), ts, loginNonce)), Timestamp: ts, Nonce: loginNonce}); err != nil {
			t.Fatal(err)
		}
		// A conversation Tom is not in.
		conv, _, err := srv.Hub.CreateConversation(ctx, &realtime.Conversation{Creator: id("Jerry"), Members: []string{id("Jerry")}})
		if err != nil {
			t.Fatal(err)
		}
		for i, action := range []string{"invite", "kick"} {
			op := wire.OpType_add
			if action == "kick" {
				op = wire.OpType_remove
			}
			nonce := id(fmt.Sprint("n", i))
			// What the SDK's conversationSignatureFactory is given for
			// join()/quit(): (convId, clientId, [clientId], action).
			msg := hub.ConversationSignatureMessage("app", id("Tom"), conv.ID, []string{id("Tom")}, ts, nonce, action)
			if _, err := convRequest(ctx, tom, op, &wire.ConvCommand{Cid: proto.String(conv.ID), M: []string{id("Tom")},
				S: proto.String(sig(msg)), T: proto.Int64(ts), N: proto.String(nonce)}); err != nil {
				t.Fatalf("signed self-%s: %v", action, err)
			}
		}
	}, &hub.Config{AppID: "app", MasterKey: testMasterKey, RequireLoginSignature: true, RequireConversationSignature: true})
}

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

func TestRecalledMessagesCannotBeEdited(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		sent, _ := tom.SendText(ctx, cid, "gone")
		patch := func(item *wire.PatchItem) error {
			_, err := tom.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_patch.Enum(), Op: wire.OpType_modify.Enum(),
				PeerId: proto.String(tom.ClientID), PatchMessage: &wire.PatchCommand{Patches: []*wire.PatchItem{item}}})
			return err
		}
		if err := patch(&wire.PatchItem{Cid: proto.String(cid), Mid: proto.String(sent.ID), Recall: proto.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		if err := patch(&wire.PatchItem{Cid: proto.String(cid), Mid: proto.String(sent.ID), Data: proto.String(text("back"))}); !errors.Is(err, realtime.ErrMessageNotFound) {
			t.Fatalf("edit of a recalled message: %v", err)
		}
		logs, _ := tom.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
		if len(logs) != 1 || logs[0].GetData() != realtime.RecalledBody {
			t.Fatalf("history = %v", logs)
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

package hub_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

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

func TestEditRecallAndPatchReplay(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		sent, err := tom.SendText(ctx, cid, "typo")
		if err != nil {
			t.Fatal(err)
		}
		patch := func(c *lcclient.Client, item *wire.PatchItem) error {
			_, err := c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_patch.Enum(), Op: wire.OpType_modify.Enum(),
				PeerId: proto.String(c.ClientID), PatchMessage: &wire.PatchCommand{Patches: []*wire.PatchItem{item}}})
			return err
		}
		// Only the sender may edit; missing messages are 4404.
		if err := patch(jerry, &wire.PatchItem{Cid: proto.String(cid), Mid: proto.String(sent.ID), Data: proto.String(text("hijack"))}); !errors.Is(err, realtime.ErrMessageOwnership) {
			t.Fatalf("non-sender edit: %v", err)
		}
		if err := patch(tom, &wire.PatchItem{Cid: proto.String(cid), Mid: proto.String("000000000000000000000000"), Data: proto.String(text("x"))}); !errors.Is(err, realtime.ErrMessageNotFound) {
			t.Fatalf("missing message edit: %v", err)
		}
		if err := patch(tom, &wire.PatchItem{Cid: proto.String(cid), Mid: proto.String(sent.ID), Data: proto.String(text("fixed"))}); err != nil {
			t.Fatal(err)
		}
		p, err := jerry.NextOf(ctx, wire.CommandType_patch)
		if err != nil || p.GetPatchMessage().GetPatches()[0].GetData() != text("fixed") || p.GetPatchMessage().GetPatches()[0].GetRecall() {
			t.Fatalf("edit push = %v, %v", p, err)
		}
		lastPatch := p.GetPatchMessage().GetLastPatchTime()
		logs, _ := jerry.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
		if len(logs) != 1 || logs[0].GetData() != text("fixed") || logs[0].GetPatchTimestamp() == 0 {
			t.Fatalf("history after edit: %v", logs)
		}
		// Jerry goes offline; Tom recalls; Jerry gets the recall on re-login.
		jerry.Close()
		if err := patch(tom, &wire.PatchItem{Cid: proto.String(cid), Mid: proto.String(sent.ID), Recall: proto.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		j2, err := lcclient.Dial(ctx, srv.WebsocketURL())
		if err != nil {
			t.Fatal(err)
		}
		defer j2.Close()
		if _, err := j2.Open(ctx, id("Jerry"), lcclient.OpenOptions{LastPatchTime: lastPatch}); err != nil {
			t.Fatal(err)
		}
		p, err = j2.NextOf(ctx, wire.CommandType_patch)
		if err != nil || !p.GetPatchMessage().GetPatches()[0].GetRecall() || p.GetPatchMessage().GetPatches()[0].GetData() != realtime.RecalledBody {
			t.Fatalf("replayed recall = %v, %v", p, err)
		}
		logs, _ = j2.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
		if len(logs) != 1 || logs[0].GetData() != realtime.RecalledBody {
			t.Fatalf("history after recall: %v", logs)
		}
	}, nil)
}

func TestEditAndRecallCanBeSwitchedOff(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		sent, _ := tom.SendText(ctx, cid, "permanent")
		for _, recall := range []bool{false, true} {
			_, err := tom.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_patch.Enum(), Op: wire.OpType_modify.Enum(), PeerId: proto.String(tom.ClientID),
				PatchMessage: &wire.PatchCommand{Patches: []*wire.PatchItem{{Cid: proto.String(cid), Mid: proto.String(sent.ID), Recall: proto.Bool(recall), Data: proto.String(text("x"))}}}})
			want := realtime.ErrMessageEditDisabled
			if recall {
				want = realtime.ErrMessageRecallDisabled
			}
			if !errors.Is(err, want) {
				t.Fatalf("recall=%v: %v", recall, err)
			}
		}
	}, &hub.Config{DisableEdit: true, DisableRecall: true})
}

package hub_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hooks"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

func noMore(t *testing.T, c *lcclient.Client, typ wire.CommandType, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if p, err := c.NextOf(ctx, typ); err == nil {
		t.Fatalf("%s: unexpected push %v", what, p)
	}
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
		// The kicked device's automatic re-login is refused, in the reply.
		a2 := dial()
		if _, err := a2.Open(ctx, id("Tom"), lcclient.OpenOptions{Reconnect: true, SessionToken: stA}); !errors.Is(err, realtime.ErrSessionConflict) {
			t.Fatalf("conflicting re-login: %v", err)
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
				want = realtime.ErrMessageRecallOff
			}
			if !errors.Is(err, want) {
				t.Fatalf("recall=%v: %v", recall, err)
			}
		}
	}, &hub.Config{DisableEdit: true, DisableRecall: true})
}

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

func TestUnreadOnLoginMentionsAndReadClearsOtherDevices(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"), id("Kate"))
		tom.SendText(ctx, cid, "one")
		tom.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(text("@Jerry")), MentionPids: []string{id("Jerry")}})
		last, _ := tom.SendText(ctx, cid, "three")
		jerry := srv.Login(t, id("Jerry"))
		p, err := jerry.NextOf(ctx, wire.CommandType_unread)
		if err != nil {
			t.Fatal(err)
		}
		u := p.GetUnreadMessage().GetConvs()
		if len(u) != 1 || u[0].GetCid() != cid || u[0].GetUnread() != 3 || !u[0].GetMentioned() || u[0].GetMid() != last.ID || u[0].GetData() != text("three") || u[0].GetFrom() != id("Tom") {
			t.Fatalf("unread = %v", u)
		}
		kate := srv.Login(t, id("Kate"))
		p, _ = kate.NextOf(ctx, wire.CommandType_unread)
		if u := p.GetUnreadMessage().GetConvs(); len(u) != 1 || u[0].GetMentioned() {
			t.Fatalf("Kate's unread = %v (not mentioned)", u)
		}
		// A second device of Jerry; reading on one clears the other.
		jerry2 := srv.Login(t, id("Jerry"), lcclient.Base64())
		if _, err := jerry2.NextOf(ctx, wire.CommandType_unread); err != nil {
			t.Fatal(err)
		}
		if err := jerry.Read(ctx, cid, 0); err != nil {
			t.Fatal(err)
		}
		p, err = jerry2.NextOf(ctx, wire.CommandType_unread)
		if err != nil || p.GetUnreadMessage().GetConvs()[0].GetUnread() != 0 {
			t.Fatalf("other device's unread after read: %v, %v", p, err)
		}
		jerry3 := srv.Login(t, id("Jerry"))
		noMore(t, jerry3, wire.CommandType_unread, "after read() nothing is unread")
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

func TestHooksDropWithAppCodeAndKeywordFilter(t *testing.T) {
	drop := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
		if strings.Contains(ev.Message.Data, "forbidden") {
			return &realtime.MessageReceivedResult{Drop: true, AppCode: 1234, Detail: "not here"}, nil
		}
		return nil, nil
	})
	panicky := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
		if strings.Contains(ev.Message.Data, "panic") {
			panic("hook bug")
		}
		return nil, nil
	})
	filter := hooks.NewKeywordFilter([]string{"badword", "坏话"}, nil)
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		_, err := tom.SendText(ctx, cid, "forbidden fruit")
		var e *realtime.Error
		if !errors.As(err, &e) || e.Code != realtime.CodeMessageRejectedByApp || e.AppCode != 1234 {
			t.Fatalf("dropped send: %v", err)
		}
		// A panicking hook is ignored (default policy): the message goes on.
		if _, err := tom.SendText(ctx, cid, "panic now"); err != nil {
			t.Fatalf("send past a panicking hook: %v", err)
		}
		if m, err := jerry.NextMessage(ctx); err != nil || m.Data != text("panic now") {
			t.Fatalf("message after panicking hook: %v %v", m, err)
		}
		sent, err := tom.SendText(ctx, cid, "you badword, 说坏话")
		if err != nil {
			t.Fatal(err)
		}
		m, err := jerry.NextMessage(ctx)
		if err != nil || m.Data != text("you ***, 说***") {
			t.Fatalf("filtered delivery = %v, %v", m, err)
		}
		p, err := tom.NextOf(ctx, wire.CommandType_patch)
		it := p.GetPatchMessage().GetPatches()[0]
		if err != nil || it.GetMid() != sent.ID || it.GetPatchCode() != realtime.CodeKeywordFiltered || it.GetPatchReason() == "" || it.GetData() != text("you ***, 说***") {
			t.Fatalf("sender's MESSAGE_UPDATE = %v, %v", p, err)
		}
		logs, _ := jerry.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
		if len(logs) != 2 || logs[1].GetData() != text("you ***, 说***") {
			t.Fatalf("stored = %v", logs)
		}
	}, &hub.Config{Hooks: []any{drop, panicky, filter}})
}

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

func TestSendRateLimit(t *testing.T) {
	st := backends(t)["sqlite"](t)
	srv := newServer(t, st, &hub.Config{Limits: hub.Limits{SendRate: 1, SendBurst: 2}})
	ctx := ctxT(t)
	tom := srv.Login(t, "Tom")
	cid, _ := tom.StartConversation(ctx, "Jerry")
	var limited bool
	for i := 0; i < 5; i++ {
		if _, err := tom.SendText(ctx, cid, "spam"); errors.Is(err, realtime.ErrRateLimited) {
			limited = true
		}
	}
	if !limited {
		t.Fatal("5 sends at once with a burst of 2 were not limited")
	}
}

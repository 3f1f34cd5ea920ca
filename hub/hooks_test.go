package hub_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hooks"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

// waitFor takes values from ch until one satisfies ok, failing the test
// after a few seconds. Values of other runs (the hooks are shared by the
// SQLite and PostgreSQL subtests) are skipped by ok.
func waitFor[T any](t *testing.T, ch <-chan T, what string, ok func(T) bool) T {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case v := <-ch:
			if ok(v) {
				return v
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// codeOf returns the code and app code of a coded error (0, 0 otherwise).
func codeOf(err error) (code, appCode int) {
	var e *realtime.Error
	if errors.As(err, &e) {
		return e.Code, e.AppCode
	}
	return 0, 0
}

// blocker is a hook's way to block until the running test releases it
// (each subtest has its own channel, released before the hub shuts down,
// which waits for the hub's hook goroutines).
type blocker struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *blocker) arm(t *testing.T) {
	ch := make(chan struct{})
	b.mu.Lock()
	b.ch = ch
	b.mu.Unlock()
	t.Cleanup(func() { close(ch) })
}

func (b *blocker) wait() {
	b.mu.Lock()
	ch := b.ch
	b.mu.Unlock()
	<-ch
}

func TestHookTimeoutIgnoredLetsMessageThrough(t *testing.T) {
	var release blocker
	slow := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
		if strings.Contains(ev.Message.Data, "slow") {
			release.wait() // ignores its deadline on purpose
			drop := "dropped late"
			return &realtime.MessageReceivedResult{Data: &drop}, nil
		}
		return nil, nil
	})
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		release.arm(t)
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		// The hook blocks until the test ends, so the send returning at
		// all shows the hub stopped waiting at the deadline.
		sent, err := tom.SendText(ctx, cid, "slow hook")
		if err != nil {
			t.Fatalf("send past a timed-out hook (ignore policy): %v", err)
		}
		m, err := jerry.NextMessage(ctx)
		if err != nil || m.ID != sent.ID || m.Data != text("slow hook") {
			t.Fatalf("delivered %+v, %v; want the original body", m, err)
		}
		logs, err := tom.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
		if err != nil || len(logs) != 1 || logs[0].GetData() != text("slow hook") {
			t.Fatalf("stored %v, %v", logs, err)
		}
	}, &hub.Config{Hooks: []any{slow}, HookTimeout: 100 * time.Millisecond})
}

func TestHookTimeoutRefusedWith4200(t *testing.T) {
	var release blocker
	slow := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
		if strings.Contains(ev.Message.Data, "slow") {
			release.wait()
		}
		return nil, nil
	})
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		release.arm(t)
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		_, err := tom.SendText(ctx, cid, "slow hook")
		if code, _ := codeOf(err); code != realtime.CodeInternal {
			t.Fatalf("send past a timed-out hook (refuse policy): %v, want 4200", err)
		}
		noMore(t, jerry, wire.CommandType_direct, "a refused message is not delivered")
		logs, err := tom.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
		if err != nil || len(logs) != 0 {
			t.Fatalf("refused message stored: %v, %v", logs, err)
		}
		// A fast hook call still goes through.
		if _, err := tom.SendText(ctx, cid, "fast"); err != nil {
			t.Fatal(err)
		}
		if m, err := jerry.NextMessage(ctx); err != nil || m.Data != text("fast") {
			t.Fatalf("fast message: %v, %v", m, err)
		}
	}, &hub.Config{Hooks: []any{slow}, HookTimeout: 100 * time.Millisecond, HookFailure: hub.HookFailureRefuse})
}

func TestHookRejectionGives4402WithAppCode(t *testing.T) {
	reject := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
		if strings.Contains(ev.Message.Data, "spam") {
			return nil, realtime.Reject(777, "no spam here")
		}
		return nil, nil
	})
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		_, err := tom.SendText(ctx, cid, "buy spam")
		var e *realtime.Error
		if !errors.As(err, &e) || e.Code != realtime.CodeMessageRejectedByApp || e.AppCode != 777 || e.Detail != "no spam here" {
			t.Fatalf("rejected send: %#v", err)
		}
		noMore(t, jerry, wire.CommandType_direct, "a rejected message is not delivered")
		logs, _ := tom.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
		if len(logs) != 0 {
			t.Fatalf("rejected message stored: %v", logs)
		}
	}, &hub.Config{Hooks: []any{reject}})
}

func TestMessageReceivedRewritesRecipientsAndBody(t *testing.T) {
	var mu sync.Mutex
	var sawTo [][]string
	rewrite := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
		if !strings.Contains(ev.Message.Data, "secret") {
			return nil, nil
		}
		mu.Lock()
		sawTo = append(sawTo, slices.Clone(ev.To))
		mu.Unlock()
		// Only the first other member (Jerry) gets it, redacted.
		data := text("[redacted]")
		return &realtime.MessageReceivedResult{Data: &data, PatchCode: 42, PatchReason: "redacted by app", To: ev.To[:1]}, nil
	})
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		kate := srv.Login(t, id("Kate"))
		cid, err := tom.StartConversation(ctx, id("Jerry"), id("Kate"))
		if err != nil {
			t.Fatal(err)
		}
		sent, err := tom.SendText(ctx, cid, "the secret is 42")
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		last := sawTo[len(sawTo)-1]
		mu.Unlock()
		if !slices.Equal(last, []string{id("Jerry"), id("Kate")}) {
			t.Fatalf("hook saw To = %v, want the other members", last)
		}
		m, err := jerry.NextMessage(ctx)
		if err != nil || m.ID != sent.ID || m.Data != text("[redacted]") {
			t.Fatalf("Jerry got %+v, %v; want the rewritten body", m, err)
		}
		noMore(t, kate, wire.CommandType_direct, "Kate was removed from the recipients")
		p, err := tom.NextOf(ctx, wire.CommandType_patch)
		if err != nil {
			t.Fatal(err)
		}
		it := p.GetPatchMessage().GetPatches()[0]
		if it.GetMid() != sent.ID || it.GetPatchCode() != 42 || it.GetPatchReason() != "redacted by app" || it.GetData() != text("[redacted]") {
			t.Fatalf("sender's MESSAGE_UPDATE = %v", p)
		}
		logs, _ := tom.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
		if len(logs) != 1 || logs[0].GetData() != text("[redacted]") {
			t.Fatalf("stored %v; want the rewritten body", logs)
		}
		// An untouched message reaches everyone and makes no patch.
		if _, err := tom.SendText(ctx, cid, "plain"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*lcclient.Client{jerry, kate} {
			if m, err := c.NextMessage(ctx); err != nil || m.Data != text("plain") {
				t.Fatalf("plain message: %+v, %v", m, err)
			}
		}
		noMore(t, tom, wire.CommandType_patch, "no rewrite, no MESSAGE_UPDATE")
	}, &hub.Config{Hooks: []any{rewrite}})
}

func TestMessageUpdateHookDropsAndRewritesEdits(t *testing.T) {
	update := realtime.MessageUpdateFunc(func(ctx context.Context, ev *realtime.MessageUpdateEvent) (*realtime.MessageUpdateResult, error) {
		switch {
		case strings.Contains(ev.Patch.Data, "forbidden"):
			return &realtime.MessageUpdateResult{Drop: true, AppCode: 55, Detail: "edit refused"}, nil
		case strings.Contains(ev.Patch.Data, "reject"):
			return nil, realtime.Reject(56, "edit rejected")
		case strings.Contains(ev.Patch.Data, "rewrite"):
			if ev.Original.Data != text("original") {
				return nil, errors.New("hook did not see the stored message")
			}
			data := text("rewritten by app")
			return &realtime.MessageUpdateResult{Data: &data}, nil
		}
		return nil, nil
	})
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		sent, err := tom.SendText(ctx, cid, "original")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jerry.NextMessage(ctx); err != nil {
			t.Fatal(err)
		}
		edit := func(body string) error {
			_, err := tom.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_patch.Enum(), Op: wire.OpType_modify.Enum(), PeerId: proto.String(tom.ClientID),
				PatchMessage: &wire.PatchCommand{Patches: []*wire.PatchItem{{Cid: proto.String(cid), Mid: proto.String(sent.ID), Data: proto.String(text(body))}}}})
			return err
		}
		err = edit("forbidden words")
		if code, app := codeOf(err); code != realtime.CodeMessageUpdateRejected || app != 55 {
			t.Fatalf("dropped edit: %v; want 4405 with appCode 55", err)
		}
		err = edit("reject me")
		if code, app := codeOf(err); code != realtime.CodeMessageUpdateRejected || app != 56 {
			t.Fatalf("rejected edit: %v; want 4405 with appCode 56", err)
		}
		noMore(t, jerry, wire.CommandType_patch, "refused edits are not pushed")
		logs, _ := jerry.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
		if len(logs) != 1 || logs[0].GetData() != text("original") || logs[0].GetPatchTimestamp() != 0 {
			t.Fatalf("after refused edits: %v", logs)
		}
		if err := edit("please rewrite"); err != nil {
			t.Fatal(err)
		}
		p, err := jerry.NextOf(ctx, wire.CommandType_patch)
		if err != nil || p.GetPatchMessage().GetPatches()[0].GetData() != text("rewritten by app") {
			t.Fatalf("edit push = %v, %v; want the hook's body", p, err)
		}
		logs, _ = jerry.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
		if len(logs) != 1 || logs[0].GetData() != text("rewritten by app") {
			t.Fatalf("stored after rewritten edit: %v", logs)
		}
	}, &hub.Config{Hooks: []any{update}})
}

func convRequest(ctx context.Context, c *lcclient.Client, op wire.OpType, cm *wire.ConvCommand) (*wire.GenericCommand, error) {
	return c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: op.Enum(), PeerId: proto.String(c.ClientID), ConvMessage: cm})
}

func TestConversationHooksRejectAndAfterHooksSeeMembers(t *testing.T) {
	type event struct {
		op      realtime.ConversationOp
		initBy  string
		convID  string
		members []string
		convM   []string
	}
	after := make(chan event, 64)
	before := realtime.ConversationHook(true, func(ctx context.Context, ev *realtime.ConversationEvent) error {
		for _, m := range ev.Members {
			if strings.HasSuffix(m, "Banned") && (ev.Op == realtime.ConvStart || ev.Op == realtime.ConvAdd) {
				return realtime.Reject(9, "banned member")
			}
			if strings.HasSuffix(m, "Boss") && ev.Op == realtime.ConvRemove {
				return realtime.Reject(10, "the boss stays")
			}
		}
		if ev.Op == realtime.ConvUpdate && ev.Name == "bad name" {
			return realtime.Reject(11, "bad name")
		}
		return nil
	})
	afterHook := realtime.ConversationHook(false, func(ctx context.Context, ev *realtime.ConversationEvent) error {
		e := event{op: ev.Op, initBy: ev.InitBy, members: slices.Clone(ev.Members)}
		if ev.Conversation != nil {
			e.convID = ev.Conversation.ID
			e.convM = slices.Clone(ev.Conversation.Members)
		}
		after <- e
		return nil
	})
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		mine := func(op realtime.ConversationOp) func(event) bool {
			return func(e event) bool { return e.op == op && e.initBy == id("Tom") }
		}
		want4305 := func(err error, app int, what string) {
			t.Helper()
			if code, a := codeOf(err); code != realtime.CodeConvRejectedByApp || a != app {
				t.Fatalf("%s: %v; want 4305 with appCode %d", what, err, app)
			}
		}
		_, err := tom.StartConversation(ctx, id("Jerry"), id("Banned"))
		want4305(err, 9, "start with a banned member")

		cid, err := tom.StartConversation(ctx, id("Jerry"))
		if err != nil {
			t.Fatal(err)
		}
		e := waitFor(t, after, "ConversationStarted", mine(realtime.ConvStart))
		if e.convID != cid || !slices.Equal(e.members, []string{id("Jerry"), id("Tom")}) {
			t.Fatalf("started event = %+v; want conv %s with [Jerry Tom]", e, cid)
		}

		_, err = convRequest(ctx, tom, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("Banned")}})
		want4305(err, 9, "add a banned member")
		if _, err := convRequest(ctx, tom, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("Kate"), id("Boss")}}); err != nil {
			t.Fatal(err)
		}
		e = waitFor(t, after, "ConversationAdded", mine(realtime.ConvAdd))
		if e.convID != cid || !slices.Equal(e.members, []string{id("Boss"), id("Kate")}) ||
			!slices.Equal(e.convM, []string{id("Boss"), id("Jerry"), id("Kate"), id("Tom")}) {
			t.Fatalf("added event = %+v", e)
		}

		_, err = convRequest(ctx, tom, wire.OpType_remove, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("Boss")}})
		want4305(err, 10, "remove the boss")
		if _, err := convRequest(ctx, tom, wire.OpType_remove, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("Kate")}}); err != nil {
			t.Fatal(err)
		}
		e = waitFor(t, after, "ConversationRemoved", mine(realtime.ConvRemove))
		if e.convID != cid || !slices.Equal(e.members, []string{id("Kate")}) || slices.Contains(e.convM, id("Kate")) {
			t.Fatalf("removed event = %+v", e)
		}

		_, err = convRequest(ctx, tom, wire.OpType_update, &wire.ConvCommand{Cid: proto.String(cid), Attr: &wire.JsonObjectMessage{Data: proto.String(`{"name":"bad name"}`)}})
		want4305(err, 11, "update to a bad name")
		if _, err := convRequest(ctx, tom, wire.OpType_update, &wire.ConvCommand{Cid: proto.String(cid), Attr: &wire.JsonObjectMessage{Data: proto.String(`{"name":"good name"}`)}}); err != nil {
			t.Fatal(err)
		}
		// Refused changes changed nothing.
		res, err := convRequest(ctx, tom, wire.OpType_members, &wire.ConvCommand{Cid: proto.String(cid)})
		if err != nil || !slices.Equal(res.GetConvMessage().GetM(), []string{id("Boss"), id("Jerry"), id("Tom")}) {
			t.Fatalf("members after refused changes: %v, %v", res, err)
		}
	}, &hub.Config{Hooks: []any{before, afterHook}})
}

func TestClientOnlineOfflineHooksWithReasons(t *testing.T) {
	type event struct {
		online           bool
		client, tag, why string
	}
	events := make(chan event, 64)
	online := realtime.ClientOnlineFunc(func(ctx context.Context, ev *realtime.ClientEvent) error {
		events <- event{online: true, client: ev.ClientID, tag: ev.Tag}
		return nil
	})
	offline := realtime.ClientOfflineFunc(func(ctx context.Context, ev *realtime.ClientEvent) error {
		events <- event{client: ev.ClientID, tag: ev.Tag, why: ev.Reason}
		return nil
	})
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		is := func(online bool, client, why string) func(event) bool {
			return func(e event) bool { return e.online == online && e.client == client && e.why == why }
		}
		// Logout.
		tom := srv.Login(t, id("Tom"))
		waitFor(t, events, "Tom online", is(true, id("Tom"), ""))
		if err := tom.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, events, "Tom offline: logout", is(false, id("Tom"), "logout"))

		// Network drop.
		jerry := srv.Login(t, id("Jerry"))
		waitFor(t, events, "Jerry online", is(true, id("Jerry"), ""))
		jerry.Close()
		waitFor(t, events, "Jerry offline: disconnect", is(false, id("Jerry"), "disconnect"))

		// Conflict: the same tag on another device.
		dial := func() *lcclient.Client {
			c, err := lcclient.Dial(ctx, srv.WebsocketURL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			c.AppID = srv.AppID
			return c
		}
		a, b := dial(), dial()
		if _, err := a.Open(ctx, id("Kate"), lcclient.OpenOptions{Tag: "Mobile"}); err != nil {
			t.Fatal(err)
		}
		e := waitFor(t, events, "Kate online", is(true, id("Kate"), ""))
		if e.tag != "Mobile" {
			t.Fatalf("online event tag = %q", e.tag)
		}
		if _, err := b.Open(ctx, id("Kate"), lcclient.OpenOptions{Tag: "Mobile"}); err != nil {
			t.Fatal(err)
		}
		// The kicked session's offline and the new one's online hooks run
		// concurrently: wait for both, in either order.
		var kicked, again bool
		waitFor(t, events, "Kate offline: conflict and Kate online again", func(e event) bool {
			kicked = kicked || is(false, id("Kate"), "conflict")(e)
			again = again || is(true, id("Kate"), "")(e)
			return kicked && again
		})
	}, &hub.Config{Hooks: []any{online, offline}})
}

func TestMessageSentHookSeesOnlineAndOffline(t *testing.T) {
	type event struct {
		data            string
		online, offline []string
	}
	events := make(chan event, 16)
	sent := realtime.MessageSentFunc(func(ctx context.Context, ev *realtime.MessageSentEvent) error {
		events <- event{data: ev.Message.Data, online: slices.Clone(ev.Online), offline: slices.Clone(ev.Offline)}
		return nil
	})
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"), id("Kate"), id("Spike"))
		body := "hello " + id("all")
		if _, err := tom.SendText(ctx, cid, body); err != nil {
			t.Fatal(err)
		}
		e := waitFor(t, events, "MessageSent", func(e event) bool { return e.data == text(body) })
		slices.Sort(e.online)
		slices.Sort(e.offline)
		if !slices.Equal(e.online, []string{id("Jerry")}) || !slices.Equal(e.offline, []string{id("Kate"), id("Spike")}) {
			t.Fatalf("MessageSent online %v offline %v; want [Jerry] and [Kate Spike]", e.online, e.offline)
		}
		if _, err := jerry.NextMessage(ctx); err != nil {
			t.Fatal(err)
		}
	}, &hub.Config{Hooks: []any{sent}})
}

func TestAfterStoreHooksSeeStoredMessageID(t *testing.T) {
	type seen struct {
		hook, id string
		ts       int64
	}
	ch := make(chan seen, 16)
	sent := realtime.MessageSentFunc(func(ctx context.Context, ev *realtime.MessageSentEvent) error {
		ch <- seen{"sent", ev.Message.ID, ev.Message.Timestamp}
		return nil
	})
	off := realtime.ReceiversOfflineFunc(func(ctx context.Context, ev *realtime.ReceiversOfflineEvent) (*realtime.ReceiversOfflineResult, error) {
		ch <- seen{"offline", ev.Message.ID, ev.Message.Timestamp}
		return nil, nil
	})
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		cid, _ := tom.StartConversation(ctx, id("Kate"))
		r, err := tom.SendText(ctx, cid, "hi")
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			s := waitFor(t, ch, "after-store hooks", func(seen) bool { return true })
			if s.id != r.ID || s.ts != r.Timestamp {
				t.Fatalf("%s hook saw message id %q ts %d; want %s %d", s.hook, s.id, s.ts, r.ID, r.Timestamp)
			}
		}
	}, &hub.Config{Hooks: []any{sent, off}})
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

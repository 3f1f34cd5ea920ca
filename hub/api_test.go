package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
	"github.com/leanhub/realtime/typedmsg"
	"google.golang.org/protobuf/proto"
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

// A member removed through any public path gets none of the messages sent
// after the removal returned; one added through any path gets them and may
// send. The check is ordered, not timed: after the group message is acked
// the sender writes to the removed client in another conversation, and the
// removed client's next message must be that one.
func TestMembershipChangesTakeEffectAtOnceOnEveryPath(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		kate := srv.Login(t, id("Kate"))
		paths := []struct {
			name   string
			remove func(cid string) error
			add    func(cid string) error
		}{
			{"Go API", func(cid string) error {
				_, err := srv.Hub.RemoveMembers(ctx, cid, id("Tom"), []string{id("Kate")})
				return err
			}, func(cid string) error {
				_, err := srv.Hub.AddMembers(ctx, cid, id("Tom"), []string{id("Kate")})
				return err
			}},
			{"another member's command", func(cid string) error {
				_, err := convRequest(ctx, tom, wire.OpType_remove, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("Kate")}})
				return err
			}, func(cid string) error {
				_, err := convRequest(ctx, tom, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("Kate")}})
				return err
			}},
			{"the member's own quit and join", func(cid string) error {
				_, err := convRequest(ctx, kate, wire.OpType_remove, &wire.ConvCommand{Cid: proto.String(cid)})
				return err
			}, func(cid string) error {
				_, err := convRequest(ctx, kate, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(cid)})
				return err
			}},
		}
		direct, err := tom.StartConversation(ctx, id("Kate"))
		if err != nil {
			t.Fatal(err)
		}
		nextText := func(c *lcclient.Client) string {
			t.Helper()
			m, err := c.NextMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Text string `json:"_lctext"`
			}
			json.Unmarshal([]byte(m.Data), &body)
			return body.Text
		}
		for i, p := range paths {
			group, err := tom.StartConversationWith(ctx, &wire.ConvCommand{M: []string{id("Tom"), id("Kate"), id("Jerry")},
				Attr: &wire.JsonObjectMessage{Data: proto.String(fmt.Sprintf(`{"name":"group %d"}`, i))}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tom.SendText(ctx, group, "warm"); err != nil { // the engine now has the conversation
				t.Fatal(err)
			}
			if got := nextText(kate); got != "warm" {
				t.Fatalf("%s: kate got %q before the removal", p.name, got)
			}
			if err := p.remove(group); err != nil {
				t.Fatalf("%s: remove: %v", p.name, err)
			}
			if _, err := tom.SendText(ctx, group, "after removal"); err != nil {
				t.Fatal(err)
			}
			if _, err := tom.SendText(ctx, direct, "marker"); err != nil {
				t.Fatal(err)
			}
			if got := nextText(kate); got != "marker" {
				t.Fatalf("%s: removed member got %q, want only the marker", p.name, got)
			}
			if _, err := kate.SendText(ctx, group, "still here?"); !errors.Is(err, realtime.ErrInvalidTarget) {
				t.Fatalf("%s: removed member's send: %v, want 4401", p.name, err)
			}
			if err := p.add(group); err != nil {
				t.Fatalf("%s: add: %v", p.name, err)
			}
			if _, err := tom.SendText(ctx, group, "after adding"); err != nil {
				t.Fatal(err)
			}
			if got := nextText(kate); got != "after adding" {
				t.Fatalf("%s: re-added member got %q", p.name, got)
			}
			if _, err := kate.SendText(ctx, group, "back"); err != nil {
				t.Fatalf("%s: re-added member's send: %v", p.name, err)
			}
		}
	}, nil)
}

// Hub.Send applies every check a client's send meets, and System does what
// its doc says.
func TestGoAPISendChecksLikeAClient(t *testing.T) {
	types := &typedmsg.Registry{}
	rewrite := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
		if strings.Contains(ev.Message.Data, "rewrite me") {
			s := text("rewritten")
			return &realtime.MessageReceivedResult{Data: &s, PatchCode: 7, PatchReason: "house rules"}, nil
		}
		return nil, nil
	})
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		send := func(m realtime.Message, o *hub.SendOptions) (*realtime.Message, error) {
			m.ConvID = cid
			return srv.Hub.Send(ctx, &m, o)
		}
		_, err := send(realtime.Message{From: id("Tom"), Data: strings.Repeat("x", 6000)}, nil)
		wantCode(t, err, realtime.CodeMessageTooLarge, "oversize body")
		_, err = send(realtime.Message{From: id("Tom"), Data: `{"_lctype":-5,"_lcloc":{"latitude":123,"longitude":0}}`}, nil)
		wantCode(t, err, realtime.CodeInvalidMessage, "location out of range")
		_, err = send(realtime.Message{From: id("Tom"), Data: text("hi"), MentionPids: []string{id("Nobody")}}, nil)
		wantCode(t, err, realtime.CodeInvalidMessage, "mention of a non-member")
		_, err = send(realtime.Message{From: id("Bot"), Data: text("hi")}, nil)
		wantCode(t, err, realtime.CodeInvalidMessagingTarget, "non-member without System")

		// System: a non-member sender reaches every member and its
		// message is stored.
		m, err := send(realtime.Message{From: id("Bot"), Data: text("notice")}, &hub.SendOptions{System: true})
		if err != nil {
			t.Fatalf("system send: %v", err)
		}
		for _, c := range []*lcclient.Client{tom, jerry} {
			got, err := c.NextMessage(ctx)
			if err != nil || got.ID != m.ID || got.From != id("Bot") {
				t.Fatalf("%s got %+v, %v; want the system message", c.ClientID, got, err)
			}
		}
		hist, err := srv.Hub.History(ctx, realtime.HistoryQuery{ConvID: cid, Limit: 5})
		if err != nil || len(hist) != 1 || hist[0].ID != m.ID {
			t.Fatalf("history = %+v, %v", hist, err)
		}

		// A hook's rewrite reaches the members, and the sender's devices
		// learn it through MESSAGE_UPDATE, as for a client's send.
		m, err = send(realtime.Message{From: id("Tom"), Data: text("rewrite me")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := jerry.NextMessage(ctx); err != nil || got.Data != text("rewritten") {
			t.Fatalf("jerry got %+v, %v", got, err)
		}
		if got, err := tom.NextMessage(ctx); err != nil || got.ID != m.ID {
			t.Fatalf("the sender's own device got %+v, %v", got, err)
		}
		p, err := tom.NextOf(ctx, wire.CommandType_patch)
		if err != nil || p.GetPatchMessage().GetPatches()[0].GetPatchCode() != 7 {
			t.Fatalf("MESSAGE_UPDATE to the sender: %v, %v", p, err)
		}

		// Temporary conversations expire for the Go API too.
		tmp, _, err := srv.Hub.CreateConversation(ctx, &realtime.Conversation{Creator: id("Tom"), Members: []string{id("Jerry")},
			Temporary: true, ExpiresAt: time.Now().Add(300 * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Hub.Send(ctx, &realtime.Message{ConvID: tmp.ID, From: id("Tom"), Data: text("soon")}, nil); err != nil {
			t.Fatalf("send to a live temporary conversation: %v", err)
		}
		time.Sleep(400 * time.Millisecond)
		_, err = srv.Hub.Send(ctx, &realtime.Message{ConvID: tmp.ID, From: id("Tom"), Data: text("late")}, nil)
		if code, _ := codeOf(err); code != realtime.CodeTempConvExpired && code != realtime.CodeInvalidMessagingTarget {
			t.Fatalf("send to an expired temporary conversation: %v", err)
		}
	}, &hub.Config{MessageTypes: types, Hooks: []any{rewrite}})
}

// The Go API's conversation operations notify online members like the
// clients' own commands.
func TestGoAPIConversationOperationsNotifyMembers(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		jerry := srv.Login(t, id("Jerry"))
		conv, created, err := srv.Hub.CreateConversation(ctx, &realtime.Conversation{Creator: id("Tom"), Members: []string{id("Jerry")}, Name: "from Go"})
		if err != nil || !created || !conv.HasMember(id("Tom")) || !conv.HasMember(id("Jerry")) {
			t.Fatalf("create = %+v %v %v", conv, created, err)
		}
		if p, err := jerry.NextOf(ctx, wire.CommandType_conv); err != nil || p.GetOp() != wire.OpType_joined {
			t.Fatalf("jerry's INVITED: %v, %v", p, err)
		}
		name := "renamed"
		if _, err := srv.Hub.UpdateConversation(ctx, id("Tom"), realtime.ConversationUpdate{ID: conv.ID, Name: &name}); err != nil {
			t.Fatal(err)
		}
		for {
			p, err := jerry.NextOf(ctx, wire.CommandType_conv)
			if err != nil {
				t.Fatal(err)
			}
			if p.GetOp() == wire.OpType_updated {
				if !strings.Contains(p.GetConvMessage().GetAttr().GetData(), "renamed") {
					t.Fatalf("UPDATED = %v", p)
				}
				break
			}
		}
		m, err := srv.Hub.Send(ctx, &realtime.Message{ConvID: conv.ID, From: id("Tom"), Data: text("oops")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jerry.NextMessage(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Hub.Edit(ctx, conv.ID, m.ID, text("fixed"), 3, "moderated"); err != nil {
			t.Fatal(err)
		}
		p, err := jerry.NextOf(ctx, wire.CommandType_patch)
		if err != nil || p.GetPatchMessage().GetPatches()[0].GetData() != text("fixed") {
			t.Fatalf("edit push: %v, %v", p, err)
		}
		if _, err := srv.Hub.Recall(ctx, conv.ID, m.ID); err != nil {
			t.Fatal(err)
		}
		p, err = jerry.NextOf(ctx, wire.CommandType_patch)
		if err != nil || !p.GetPatchMessage().GetPatches()[0].GetRecall() {
			t.Fatalf("recall push: %v, %v", p, err)
		}
		if _, err := srv.Hub.History(ctx, realtime.HistoryQuery{ConvID: "0123456789abcdef01234567"}); !errors.Is(err, realtime.ErrConvNotFound) {
			t.Fatalf("history of a missing conversation: %v", err)
		}
	}, nil)
}

package hub_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

// Service (system) conversations: created by the application, subscribed
// to by clients themselves (join/quit), broadcast to by the application,
// written to one subscriber at a time; a subscriber's messages go to the
// service, not to the other subscribers.
func TestServiceConversations(t *testing.T) {
	var mu sync.Mutex
	var upstream []string
	seen := realtime.MessageSentFunc(func(ctx context.Context, ev *realtime.MessageSentEvent) error {
		if ev.Conversation.System && !ev.Message.System {
			mu.Lock()
			upstream = append(upstream, ev.Message.From)
			mu.Unlock()
		}
		return nil
	})
	for _, vis := range []hub.ConversationVisibility{hub.VisibleToAll, hub.VisibleToMembers} {
		each(t, func(t *testing.T, srv *testServer, id func(string) string) {
			ctx := ctxT(t)
			tom := srv.Login(t, id("Tom"))
			jerry := srv.Login(t, id("Jerry"))
			svc, _, err := srv.Hub.CreateConversation(ctx, &realtime.Conversation{Name: id("news"), System: true})
			if err != nil {
				t.Fatal(err)
			}
			// Clients find it with the service conversation query, even
			// with private groups, and subscribe themselves.
			res := queryConvs(t, ctx, tom, &wire.ConvCommand{Where: &wire.JsonObjectMessage{Data: proto.String(`{"sys":true}`)}, Limit: proto.Int32(100)})
			found := false
			for _, r := range res {
				found = found || r["objectId"] == svc.ID
			}
			if !found {
				t.Fatalf("the service conversation is not in the sys query: %v", res)
			}
			for _, c := range []*lcclient.Client{tom, jerry} {
				if _, err := convRequest(ctx, c, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(svc.ID)}); err != nil {
					t.Fatalf("subscribe: %v", err)
				}
			}
			_, err = convRequest(ctx, tom, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(svc.ID), M: []string{id("Kate")}})
			wantCode(t, err, realtime.CodeConvNotAllowed, "subscribing someone else")

			// A broadcast reaches every subscriber.
			b, err := srv.Hub.Send(ctx, &realtime.Message{ConvID: svc.ID, From: "service", Data: text("hello all")}, &hub.SendOptions{System: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []*lcclient.Client{tom, jerry} {
				if m, err := c.NextMessage(ctx); err != nil || m.ID != b.ID {
					t.Fatalf("%s got %v, %v; want the broadcast", c.ClientID, m, err)
				}
			}
			// A message to one subscriber reaches only it and stays out of
			// the others' history.
			one, err := srv.Hub.Send(ctx, &realtime.Message{ConvID: svc.ID, From: "service", Data: text("just you"), To: []string{id("Tom")}}, &hub.SendOptions{System: true})
			if err != nil {
				t.Fatal(err)
			}
			if m, err := tom.NextMessage(ctx); err != nil || m.ID != one.ID {
				t.Fatalf("tom got %v, %v", m, err)
			}
			noMore(t, jerry, wire.CommandType_direct, "a message to another subscriber")
			// A subscriber's message goes to the service only.
			up, err := jerry.SendText(ctx, svc.ID, "feedback")
			if err != nil {
				t.Fatal(err)
			}
			noMore(t, tom, wire.CommandType_direct, "a subscriber's message to the service")
			history := func(c *lcclient.Client) []string {
				t.Helper()
				logs, err := c.History(ctx, &wire.LogsCommand{Cid: proto.String(svc.ID), L: proto.Int32(10)})
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, l := range logs {
					out = append(out, l.GetMsgId())
				}
				return out
			}
			if got := history(tom); !slices.Equal(got, []string{b.ID, one.ID}) {
				t.Fatalf("tom's history %v", got)
			}
			if got := history(jerry); !slices.Equal(got, []string{b.ID, up.ID}) {
				t.Fatalf("jerry's history %v", got)
			}
			// Unsubscribed: no more broadcasts.
			if _, err := convRequest(ctx, jerry, wire.OpType_remove, &wire.ConvCommand{Cid: proto.String(svc.ID)}); err != nil {
				t.Fatal(err)
			}
			if _, err := srv.Hub.Send(ctx, &realtime.Message{ConvID: svc.ID, From: "service", Data: text("bye")}, &hub.SendOptions{System: true}); err != nil {
				t.Fatal(err)
			}
			if m, err := tom.NextMessage(ctx); err != nil || m.Data != text("bye") {
				t.Fatalf("tom after jerry unsubscribed: %v, %v", m, err)
			}
			noMore(t, jerry, wire.CommandType_direct, "a broadcast after unsubscribing")
			// Addressing is for service conversations only.
			direct, _ := tom.StartConversation(ctx, id("Jerry"))
			_, err = srv.Hub.Send(ctx, &realtime.Message{ConvID: direct, From: id("Tom"), Data: text("x"), To: []string{id("Jerry")}}, nil)
			wantCode(t, err, realtime.CodeInvalidMessage, "To outside a service conversation")
		}, &hub.Config{ConversationVisibility: vis, Hooks: []any{seen}})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(upstream) == 0 {
		t.Fatal("the MessageSent hook never saw a subscriber's message to the service")
	}
}

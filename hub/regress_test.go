package hub_test

// Regression tests for hub bugs found by the hub test round.

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/wire"
)

// MessageSent and ReceiversOffline run after the message is stored: they
// must see its server id and timestamp (LeanCloud's _messageSent has msgId).
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

// Adding members already present adds nobody, so it cannot make a
// conversation exceed MaxMembers.
func TestReaddingExistingMemberToFullConversation(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		cid, err := tom.StartConversation(ctx, id("A"), id("B"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := convRequest(ctx, tom, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("A")}}); err != nil {
			t.Fatalf("re-adding a member of a full conversation: %v; want success (nothing added)", err)
		}
	}, &hub.Config{Limits: hub.Limits{MaxMembers: 3}})
}

// A member who muted a conversation gets no push for it (unless a
// ReceiversOffline hook forces it).
func TestMutedMemberGetsNoPush(t *testing.T) {
	rec := &pushRecorder{}
	eachStore(t, &hub.Config{Pusher: rec.pusher(), PushTemplate: pushTemplate}, func(t *testing.T, srv *testServer, st realtime.Store, id func(string) string) {
		ctx := ctxT(t)
		tok := id("kate.token")
		if err := srv.Hub.RegisterDevice(ctx, realtime.Device{ClientID: id("Kate"), Platform: realtime.PlatformIOS, Token: tok}); err != nil {
			t.Fatal(err)
		}
		tom := srv.Login(t, id("Tom"))
		kate := srv.Login(t, id("Kate"))
		muted, _ := tom.StartConversation(ctx, id("Kate"))
		loud, _ := tom.StartConversation(ctx, id("Kate"), id("Jerry"))
		if _, err := convRequest(ctx, kate, wire.OpType_mute, &wire.ConvCommand{Cid: proto.String(muted)}); err != nil {
			t.Fatal(err)
		}
		if err := kate.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		r, _ := tom.SendText(ctx, muted, "shh")
		sentinel, _ := tom.SendText(ctx, loud, "hey")
		rec.waitMsg(t, tok, sentinel.ID)
		rec.none(t, tok, r.ID, "muted conversation")
	})
}

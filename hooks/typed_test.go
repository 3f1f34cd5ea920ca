package hooks_test

import (
	"context"
	"testing"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hooks"
	"github.com/leanhub/realtime/typedmsg"
)

func TestTypedFuncDecodesTypedBodies(t *testing.T) {
	var seen []*typedmsg.Message
	hook := hooks.TypedFunc(func(ctx context.Context, ev *realtime.MessageEvent, m *typedmsg.Message) (*realtime.MessageReceivedResult, error) {
		seen = append(seen, m)
		return nil, nil
	})
	for _, body := range []string{`{"_lctype":-5,"_lcloc":{"latitude":1.5,"longitude":2}}`, "plain", `{"a":1}`} {
		if _, err := hook.MessageReceived(context.Background(), &realtime.MessageEvent{Message: &realtime.Message{Data: body}}); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 3 || seen[0] == nil || seen[0].Type != typedmsg.Location || seen[0].Location.Latitude != 1.5 || seen[1] != nil || seen[2] != nil {
		t.Fatalf("seen = %+v", seen)
	}
}

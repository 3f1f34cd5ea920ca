package hooks

import (
	"context"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/typedmsg"
)

// TypedFunc is a MessageReceived hook that sees the message decoded as a
// LeanCloud typed message. Bodies that are not typed messages (plain text,
// other JSON, binary) reach it with typed == nil.
type TypedFunc func(ctx context.Context, ev *realtime.MessageEvent, typed *typedmsg.Message) (*realtime.MessageReceivedResult, error)

// MessageReceived decodes the body and calls f.
func (f TypedFunc) MessageReceived(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
	var typed *typedmsg.Message
	if ev.Message != nil && ev.Message.Binary == nil && typedmsg.IsTyped(ev.Message.Data) {
		if m, err := typedmsg.Decode(ev.Message.Data); err == nil {
			typed = m
		}
	}
	return f(ctx, ev, typed)
}

package push

import (
	"context"
	"log/slog"

	"github.com/leanhub/realtime"
)

// Log is a Pusher that only logs each notification (at Info level), for
// development and the example app. It never fails.
type Log struct {
	Logger *slog.Logger // nil means slog.Default()
}

// Push implements realtime.Pusher.
func (l Log) Push(ctx context.Context, n *realtime.Notification) error {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.LogAttrs(ctx, slog.LevelInfo, "push",
		slog.String("notification", n.ID),
		slog.String("client", n.Device.ClientID),
		slog.String("platform", string(n.Device.Platform)),
		slog.String("conv", n.ConvID),
		slog.String("from", n.From),
		slog.String("msg", n.MsgID),
		slog.String("payload", string(n.Payload)))
	return nil
}

package push

import (
	"context"

	"github.com/leanhub/realtime"
)

// Multi is a Pusher that routes each notification by its device's
// platform. The "" entry, if any, takes platforms without their own entry;
// a platform with no pusher is a permanent failure (wrapping ErrPermanent).
type Multi map[realtime.Platform]realtime.Pusher

// Push implements realtime.Pusher.
func (m Multi) Push(ctx context.Context, n *realtime.Notification) error {
	p, ok := m[n.Device.Platform]
	if !ok {
		p, ok = m[""]
	}
	if !ok || p == nil {
		return &ProviderError{Provider: "multi", Reason: "no pusher for platform " + string(n.Device.Platform), Outcome: Permanent}
	}
	return p.Push(ctx, n)
}

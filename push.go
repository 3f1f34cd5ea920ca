package realtime

import (
	"context"
	"encoding/json"
	"time"
)

// Platform names a push notification service.
type Platform string

const (
	PlatformIOS     Platform = "ios"     // APNs
	PlatformAndroid Platform = "android" // FCM
	PlatformWeb     Platform = "web"     // any gateway reached through a webhook
)

// Device is a push-capable installation bound to a client id.
type Device struct {
	ClientID string
	Platform Platform
	Token    string // APNs device token, FCM registration token, ...
	// Topic is the APNs topic (bundle id) or FCM project, when the pusher
	// needs one per device.
	Topic string
	// Profile selects credentials ("dev" for the APNs sandbox); "" means the
	// default (production).
	Profile   string
	Badge     int // the library-kept badge count, incremented by "Increment"
	UpdatedAt time.Time
}

// Notification is one push to one device, built by the hub for an offline
// member.
type Notification struct {
	ID     string // unique id of this notification (for idempotent delivery)
	Device Device
	ConvID string
	From   string // sender client id
	MsgID  string
	// Payload is the rendered JSON object to send (alert, badge, sound,
	// custom keys), with "_profile" and "_apns_team_id" already removed and
	// badge "Increment" already replaced by the device's new badge.
	Payload json.RawMessage
	// Profile and TeamID come from "_profile" and "_apns_team_id".
	Profile   string
	TeamID    string
	CreatedAt time.Time
	// Attempts counts earlier failed deliveries.
	Attempts int
}

// Expired reports whether n is past the 7-day validity of a push.
func (n *Notification) Expired(now time.Time) bool {
	return now.Sub(n.CreatedAt) > PushValidity
}

// PushValidity is how long a notification stays deliverable.
const PushValidity = 7 * 24 * time.Hour

// Pusher delivers notifications to a push service. Push must be safe for
// concurrent use. It returns nil on success, an error wrapping
// ErrBadDeviceToken when the service says the token is permanently invalid
// (the device is then unregistered), and any other error for a failure worth
// retrying.
type Pusher interface {
	Push(ctx context.Context, n *Notification) error
}

// PusherFunc adapts a function to Pusher.
type PusherFunc func(ctx context.Context, n *Notification) error

// Push calls f.
func (f PusherFunc) Push(ctx context.Context, n *Notification) error { return f(ctx, n) }

// ErrBadDeviceToken is returned (wrapped) by a Pusher when a device token is
// permanently invalid.
var ErrBadDeviceToken = &Error{Code: 4600, Reason: "BAD_DEVICE_TOKEN"}

// DeviceStore keeps push devices, their badges and the push queue. store.SQL
// implements it beside Store.
type DeviceStore interface {
	// RegisterDevice binds a device token to d.ClientID (a token belongs to
	// one client at a time: registering it again moves it).
	RegisterDevice(ctx context.Context, d Device) error
	// UnregisterDevice removes a token; unknown tokens are ignored.
	UnregisterDevice(ctx context.Context, platform Platform, token string) error
	// Devices returns the devices of the given clients.
	Devices(ctx context.Context, clientIDs []string) ([]Device, error)
	// IncrementBadges adds one to the badge of each device (by platform and
	// token) and returns the new values in the same order, in one write;
	// a device that is not registered gets -1 and is not created.
	IncrementBadges(ctx context.Context, devices []Device) ([]int, error)
	// ResetBadge sets a device's badge to zero.
	ResetBadge(ctx context.Context, platform Platform, token string) error

	// EnqueuePush stores notifications for delivery (durable queue).
	EnqueuePush(ctx context.Context, ns []*Notification) error
	// ClaimPush returns up to limit notifications due at now and leases them
	// until now+lease, so that another worker does not take them meanwhile.
	ClaimPush(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*Notification, error)
	// CompletePush removes a delivered (or dropped) notification.
	CompletePush(ctx context.Context, id string) error
	// RetryPush records a failed attempt and makes the notification due
	// again at next.
	RetryPush(ctx context.Context, id string, next time.Time) error
}

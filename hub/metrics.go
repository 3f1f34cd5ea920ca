package hub

import "time"

// Metrics receives the hub's measurements. Set Config.Metrics to an
// implementation (package metrics/prom has one on Prometheus); the default
// records nothing. Keeping this an interface keeps the library free of any
// metrics dependency.
//
// Methods are called from the hub's hot paths (every command, every
// delivery) and from many goroutines at once: they must be safe for
// concurrent use, must not block, and should not allocate (atomic counters,
// pre-resolved label children). Embed NopMetrics in an implementation so
// that methods added later have a default.
//
// String arguments (command names, hook names, close reasons, push
// platforms) come from small fixed sets, safe as label values.
type Metrics interface {
	// SocketOpened is called for every websocket accepted; SocketClosed
	// when it is gone, with why: "client" (closed by the client or the
	// network), "slow_consumer", "ping_timeout", "login_timeout",
	// "shutdown", "kicked", "resync", "protocol", "write_error".
	SocketOpened()
	SocketClosed(reason string)
	// SessionOpened and SessionClosed bracket every session (one client id
	// logged in on a socket).
	SessionOpened()
	SessionClosed()
	// LoginFailed counts a refused session open, by its LeanCloud code
	// (4100 app not available, 4102 signature, 4111 conflict, 4112 token,
	// 4116 rate limited, ...).
	LoginFailed(code int)
	// Command counts one command read from a socket, by its type
	// ("session", "direct", "ack", "read", "conv", "logs", ...).
	Command(cmd string)
	// MessagesStored reports one group-commit store call: how many
	// messages it carried and how long it took (commit latency).
	MessagesStored(batch int, took time.Duration)
	// MessageDelivered reports one message pushed to this node's live
	// sessions: fanout is the number of sockets it was queued to.
	MessageDelivered(fanout int)
	// CursorsWritten reports one cursor write (acks and reads coalesced):
	// how many cursors, and lag, the age of the oldest move it carried.
	CursorsWritten(cursors int, lag time.Duration)
	// OutboundBacklog reports the frames a socket's writer found queued
	// when it woke (the outbound queue depth it drained at once).
	OutboundBacklog(frames int)
	// HookCalled reports one hook call, by hook name ("MessageReceived",
	// "ReceiversOffline", ...): its latency and outcome, "ok", "error",
	// "timeout" or "panic". A hook's deliberate refusal counts as "ok".
	HookCalled(hook string, took time.Duration, outcome string)
	// PushResult reports one delivery attempt of a push notification, by
	// device platform ("ios", "android", ...): outcome "sent", "failed"
	// (dropped: bad token, permanent error, too many attempts), "retried"
	// or "expired".
	PushResult(platform, outcome string)
	// BrokerPublished reports one publish to the broker of several nodes:
	// the events and how long it took (err != nil: it failed).
	BrokerPublished(events int, took time.Duration, err error)
	// BrokerReceived reports one message event received from another
	// node, with its lag: now minus the message's server timestamp.
	BrokerReceived(lag time.Duration)
	// BrokerResync counts one resynchronization (events may have been
	// missed: caches dropped, sockets told to reconnect).
	BrokerResync(reason string)
}

// NopMetrics records nothing. Embed it in a Metrics implementation to
// default the methods it does not implement.
type NopMetrics struct{}

var _ Metrics = NopMetrics{}

func (NopMetrics) SocketOpened()                             {}
func (NopMetrics) SocketClosed(string)                       {}
func (NopMetrics) SessionOpened()                            {}
func (NopMetrics) SessionClosed()                            {}
func (NopMetrics) LoginFailed(int)                           {}
func (NopMetrics) Command(string)                            {}
func (NopMetrics) MessagesStored(int, time.Duration)         {}
func (NopMetrics) MessageDelivered(int)                      {}
func (NopMetrics) CursorsWritten(int, time.Duration)         {}
func (NopMetrics) OutboundBacklog(int)                       {}
func (NopMetrics) HookCalled(string, time.Duration, string)  {}
func (NopMetrics) PushResult(string, string)                 {}
func (NopMetrics) BrokerPublished(int, time.Duration, error) {}
func (NopMetrics) BrokerReceived(time.Duration)              {}
func (NopMetrics) BrokerResync(string)                       {}

// closeReason names why a socket closed, for Metrics.SocketClosed.
func closeReason(code int, reason string) string {
	switch {
	case reason == "slow consumer":
		return "slow_consumer"
	case reason == "ping timeout":
		return "ping_timeout"
	case reason == "LOGIN_TIMEOUT":
		return "login_timeout"
	case reason == "server shutting down":
		return "shutdown"
	case reason == "resynchronizing":
		return "resync"
	case reason == "too many undecodable frames":
		return "protocol"
	case code == 1006:
		return "write_error"
	case code == 4111 || code >= 4000 && reason != "":
		return "kicked"
	}
	return "client"
}

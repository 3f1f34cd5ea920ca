package hub

import "context"

// A Broker joins the hubs of one deployment: several hub processes behind
// a load balancer, on one database. Whatever one node does that sessions
// on other nodes must hear — a stored message, an edit or recall, a
// receipt, a member change, a kick, a session opening or closing — it
// publishes through the broker, and every other node applies it to its
// own sessions and caches. Without a broker (Config.Broker nil) a hub is
// a single node and pays nothing for any of this.
//
// Two brokers come with this module: broker/nats (NATS core pub/sub) and
// broker/pgnotify (PostgreSQL LISTEN/NOTIFY on the store's own database,
// where the store announces its changes in the transaction that makes
// them). A Broker of one's own must keep this contract:
//
//   - Publish hands events to every other node (never back to this one),
//     in order: events of one Publish call, and of successive calls, are
//     received by each node in the order they were published. The hub
//     calls Publish from one goroutine at a time, with batches of events
//     it has queued; Publish should not block for long (the hub's queue
//     is bounded and drops, counting, when it overflows). Errors are
//     logged; the hub does not retry.
//
//   - Run receives the other nodes' events until ctx ends and hands each
//     event's Data to r.Receive, in order, from one goroutine. It calls
//     r.Subscribed when it starts receiving, and again after every
//     reconnection: events published while it was not receiving may be
//     lost, and the hub resynchronizes (it drops its caches, reloads
//     presence and has its sockets reconnect, which makes the SDKs fetch
//     what they missed). It calls r.Lost when it knows it dropped events
//     (a slow consumer) with the same effect. Run returns ctx.Err() once
//     ctx ends, or an error when it cannot go on; the hub calls it again
//     after a pause.
//
// Events are opaque bytes (their encoding belongs to the hub) with a
// Kind, so that a broker fed by the store (pgnotify) can skip what the
// store already announced (EventKind.StoreAnnounced).
type Broker interface {
	Publish(ctx context.Context, events []BrokerEvent) error
	Run(ctx context.Context, r BrokerReceiver) error
}

// BrokerReceiver is the hub's side of Broker.Run.
type BrokerReceiver interface {
	// Subscribed says the broker receives events from now on. Every call
	// after the first means events may have been missed.
	Subscribed()
	// Receive hands over one event another node published. It does not
	// block: the hub queues it (and resynchronizes if its queue
	// overflows).
	Receive(data []byte)
	// Lost says events were dropped.
	Lost(reason string)
}

// BrokerEvent is one event for the other nodes.
type BrokerEvent struct {
	Kind EventKind
	Data []byte
}

// EventKind is what a BrokerEvent is about.
type EventKind uint8

const (
	// EventMessage is a stored message.
	EventMessage EventKind = iota + 1
	// EventLive is a message delivered but not stored (transient, will).
	EventLive
	// EventPush is a command for some sessions (receipts, member
	// changes, edits and recalls, conversation updates).
	EventPush
	// EventConversation says a conversation's members or attributes
	// changed: caches drop it.
	EventConversation
	// EventKick ends sessions (a logout by the application, a conflict).
	EventKick
	// EventRevocation voids session tokens.
	EventRevocation
	// EventPresence tells which sessions a node opened and closed.
	EventPresence
	// EventNodeDown says a node is gone, with all its sessions.
	EventNodeDown
	// EventCursors are delivered and read cursor moves not yet written
	// (other nodes' receipts queries and login syncs overlay them).
	EventCursors
)

// StoreAnnounced reports whether a store that announces its changes
// itself (store.SQL.Announce) sends events of this kind from the
// transaction of the change: stored messages, conversation changes and
// revocations. A broker fed by such a store drops them from Publish.
func (k EventKind) StoreAnnounced() bool {
	return k == EventMessage || k == EventConversation || k == EventRevocation
}

func (k EventKind) String() string {
	switch k {
	case EventMessage:
		return "message"
	case EventLive:
		return "live"
	case EventPush:
		return "push"
	case EventConversation:
		return "conversation"
	case EventKick:
		return "kick"
	case EventRevocation:
		return "revocation"
	case EventPresence:
		return "presence"
	case EventNodeDown:
		return "node-down"
	case EventCursors:
		return "cursors"
	}
	return "unknown"
}

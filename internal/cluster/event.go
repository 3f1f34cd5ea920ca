// Package cluster is the encoding of the events hub nodes send each other
// through a broker (hub.Broker): stored and live messages, pushes for
// sessions on other nodes, conversation changes, kicks, token revocations
// and presence. The store writes some of them itself (PostgreSQL
// announcements in the transaction of the change), so the encoding lives
// here, shared by both.
//
// Events are compact JSON: PostgreSQL NOTIFY payloads must be text, and
// the cost of encoding is paid once per event per node, not per session.
package cluster

import (
	"encoding/json"
	"errors"
	"fmt"

	realtime "github.com/leanhub/realtime"
)

// Kind is what an event is about.
type Kind string

const (
	// KindMessage: a message was stored (Msg; or Ref when it was too large
	// to carry, to be read from the store). Receivers deliver it to their
	// sessions of its recipients and note it as the conversation's newest.
	KindMessage Kind = "m"
	// KindLive: a message delivered but not stored (transient, will).
	KindLive Kind = "l"
	// KindPush: an encoded command for some sessions (Push).
	KindPush Kind = "p"
	// KindConv: a conversation's members or attributes changed (Conv);
	// receivers drop what they cached of it.
	KindConv Kind = "c"
	// KindKick: sessions must end (Kick).
	KindKick Kind = "k"
	// KindRevoke: session tokens were revoked (Revoke).
	KindRevoke Kind = "r"
	// KindPresence: sessions opened or closed on a node (Sessions, Gone).
	KindPresence Kind = "s"
	// KindNodeDown: a node is gone with all its sessions (Node).
	KindNodeDown Kind = "d"
	// KindCursors: delivered and read cursors a node moved and has not
	// written yet (Cursors): the others overlay them on the store's.
	KindCursors Kind = "u"
)

// MaxEventSize bounds an encoded event a receiver accepts.
const MaxEventSize = 4 << 20

// Event is one thing a node tells the others.
type Event struct {
	Kind Kind   `json:"k"`
	Conv string `json:"c,omitempty"`
	// Room marks a message of a chat room: receivers deliver it to the
	// room's joiners they host (chat room membership is presence).
	Room bool `json:"room,omitempty"`
	Msg  *Msg `json:"m,omitempty"`
	// Ref names a stored message to read (KindMessage without Msg).
	Ref string `json:"ref,omitempty"`
	// Hint, when not nil, are all the clients a message event concerns
	// (recipients and sender): a receiver hosting none of them has nothing
	// to do but note the message.
	Hint []string `json:"h,omitempty"`

	Push     *Push     `json:"p,omitempty"`
	Kick     *Kick     `json:"x,omitempty"`
	Revoke   *Revoke   `json:"r,omitempty"`
	Sessions []Session `json:"s,omitempty"`
	Gone     []string  `json:"g,omitempty"` // session ids of Node that closed
	Cursors  []Cursor  `json:"u,omitempty"`
	Node     string    `json:"n,omitempty"`
}

// Msg is a message as events carry it.
type Msg struct {
	ID          string   `json:"id"`
	From        string   `json:"f"`
	Data        string   `json:"d,omitempty"`
	Binary      []byte   `json:"b,omitempty"`
	Timestamp   int64    `json:"t"`
	Seq         int64    `json:"q,omitempty"`
	MentionAll  bool     `json:"ma,omitempty"`
	MentionPids []string `json:"mp,omitempty"`
	Receipt     bool     `json:"rc,omitempty"`
	Transient   bool     `json:"tr,omitempty"`
	System      bool     `json:"sy,omitempty"`
	NoSync      bool     `json:"ns,omitempty"`
	// To distinguishes nil (every member) from empty (nobody): it is
	// always encoded, null when nil.
	To             []string `json:"to"`
	PatchTimestamp int64    `json:"pt,omitempty"`
}

// Push is an encoded command (a protobuf GenericCommand without peerId)
// for the sessions of some clients, or of a conversation's members.
type Push struct {
	Frame   []byte   `json:"f"`
	Clients []string `json:"c,omitempty"`
	// Members: the sessions of the members of the event's Conv instead of
	// Clients.
	Members bool   `json:"mb,omitempty"`
	Skip    string `json:"s,omitempty"` // a client left out
	// GroupOnly keeps only the sessions that asked for group receipts.
	GroupOnly bool `json:"go,omitempty"`
}

// Kick ends sessions: those of Client on every node (All), or the listed
// ones.
type Kick struct {
	Client string `json:"c"`
	All    bool   `json:"all,omitempty"`
	// Sessions are "node/session" ids.
	Sessions []string `json:"s,omitempty"`
	Code     int      `json:"code"`
	Reason   string   `json:"r,omitempty"`
	Detail   string   `json:"d,omitempty"`
}

// Revoke voids the session tokens of Client issued before At (Unix
// microseconds): of one device, or of all (Device "").
type Revoke struct {
	Client string `json:"c"`
	Device string `json:"d,omitempty"`
	At     int64  `json:"at"`
}

// Cursor is one member's cursor move.
type Cursor struct {
	Conv      string `json:"c"`
	Client    string `json:"p"`
	Delivered int64  `json:"d,omitempty"`
	ReadSeq   int64  `json:"rs,omitempty"`
	ReadAt    int64  `json:"rt,omitempty"`
	ReadMID   string `json:"rm,omitempty"`
}

// Session is one live session of a node.
type Session struct {
	ID     string `json:"id"`
	Client string `json:"c"`
	Tag    string `json:"t,omitempty"`
	Device string `json:"d,omitempty"`
	Opened int64  `json:"o"` // Unix microseconds
}

// FromMessage is m as events carry it.
func FromMessage(m *realtime.Message) *Msg {
	return &Msg{ID: m.ID, From: m.From, Data: m.Data, Binary: m.Binary, Timestamp: m.Timestamp, Seq: m.Seq,
		MentionAll: m.MentionAll, MentionPids: m.MentionPids, Receipt: m.Receipt, Transient: m.Transient,
		System: m.System, NoSync: m.NoSync, To: m.To, PatchTimestamp: m.PatchTimestamp}
}

// Message is the message of conversation convID.
func (m *Msg) Message(convID string) *realtime.Message {
	return &realtime.Message{ID: m.ID, ConvID: convID, From: m.From, Data: m.Data, Binary: m.Binary,
		Timestamp: m.Timestamp, Seq: m.Seq, MentionAll: m.MentionAll, MentionPids: m.MentionPids,
		Receipt: m.Receipt, Transient: m.Transient, System: m.System, NoSync: m.NoSync, To: m.To, PatchTimestamp: m.PatchTimestamp}
}

// Encode returns ev's encoding.
func Encode(ev *Event) ([]byte, error) { return json.Marshal(ev) }

var errEmpty = errors.New("cluster: empty event")

// Decode parses an event another node (or the store) encoded and checks
// that it has what its kind needs.
func Decode(b []byte) (*Event, error) {
	if len(b) == 0 {
		return nil, errEmpty
	}
	if len(b) > MaxEventSize {
		return nil, fmt.Errorf("cluster: event of %d bytes is over %d", len(b), MaxEventSize)
	}
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := ev.check(); err != nil {
		return nil, err
	}
	return &ev, nil
}

func (ev *Event) check() error {
	bad := func(what string) error { return fmt.Errorf("cluster: %s event without %s", ev.Kind, what) }
	switch ev.Kind {
	case KindMessage:
		if ev.Conv == "" {
			return bad("conversation")
		}
		if ev.Msg == nil && ev.Ref == "" {
			return bad("message")
		}
	case KindLive:
		if ev.Conv == "" {
			return bad("conversation")
		}
		if ev.Msg == nil {
			return bad("message")
		}
	case KindPush:
		if ev.Push == nil || len(ev.Push.Frame) == 0 {
			return bad("frame")
		}
		if ev.Push.Members && ev.Conv == "" {
			return bad("conversation")
		}
	case KindConv:
		if ev.Conv == "" {
			return bad("conversation")
		}
	case KindKick:
		if ev.Kick == nil || ev.Kick.Client == "" {
			return bad("client")
		}
	case KindRevoke:
		if ev.Revoke == nil || ev.Revoke.Client == "" {
			return bad("client")
		}
	case KindCursors:
		if len(ev.Cursors) == 0 {
			return bad("cursors")
		}
	case KindPresence, KindNodeDown:
		if ev.Node == "" {
			return bad("node")
		}
	default:
		return fmt.Errorf("cluster: unknown event kind %q", ev.Kind)
	}
	return nil
}

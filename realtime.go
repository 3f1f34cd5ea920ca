// Package realtime holds the domain types and interfaces of a self-hostable
// LeanMessage (LeanCloud instant messaging) server core: conversations,
// messages, cursors, patches, will messages, the Store that keeps them, the
// Pusher that notifies offline devices, and the Error type whose numeric codes
// the official LeanCloud SDKs understand.
//
// The server itself is package hub (an http.Handler); package store has the
// SQL Store for SQLite and PostgreSQL. This package imports none of them, so
// every other package (and host applications) can share its types.
//
// All timestamps in this package are milliseconds since the Unix epoch, as on
// LeanCloud's wire protocol, where timestamps double as history cursors.
package realtime

import (
	"context"
	"encoding/json"
	"time"
)

// Conversation is a chat between members: a 1:1 or group conversation, a
// transient chat room (members are not stored, messages reach whoever has
// joined and is online), a system conversation, or a temporary conversation
// that expires.
type Conversation struct {
	ID        string          // 24 lowercase hex digits, like a LeanCloud objectId
	Name      string          // display name; may be empty
	Creator   string          // client id of the creator ("c" on the wire)
	Members   []string        // sorted client ids ("m"); nil for a transient chat room
	Attrs     json.RawMessage // custom attributes, a JSON object; nil or "{}" when none
	Transient bool            // chat room ("tr")
	System    bool            // system conversation ("sys")
	Unique    bool            // created with unique: the same member set returns it again
	Temporary bool            // temporary conversation; see ExpiresAt
	// ExpiresAt is when a temporary conversation stops being usable; zero for
	// others.
	ExpiresAt time.Time
	Muted     []string // client ids that muted the conversation ("mu")
	CreatedAt time.Time
	UpdatedAt time.Time
	// LastMessage is the newest stored message, filled by queries that say
	// so; nil when there is none or when not asked for.
	LastMessage *Message
	// Seq is the sequence number of the newest stored message (0 when none).
	Seq int64
	// Roles are the members whose role is not RoleMember (the creator is
	// the owner without being listed). Filled by GetConversation.
	Roles map[string]MemberRole
	// Silenced are the members who may not send (LeanCloud's "shutup",
	// muteMembers), with when that ends (zero: until unsilenced). Filled
	// by GetConversation.
	Silenced map[string]time.Time
	// JoinedAt is when each member joined (Unix ms, the latest join).
	// Filled by GetConversation; a store that leaves it nil is fine (with
	// several nodes, a member who joined after a message that reaches a
	// node late may then get it).
	JoinedAt map[string]int64
}

// MemberRole is a member's standing in a conversation (LeanCloud's
// ConversationMemberRole): the owner (the creator) and managers moderate
// (silence, block, remove, change roles); members chat.
type MemberRole string

const (
	RoleOwner   MemberRole = "Owner"
	RoleManager MemberRole = "Manager"
	RoleMember  MemberRole = "Member"
)

// RoleOf returns clientID's role in c.
func (c *Conversation) RoleOf(clientID string) MemberRole {
	if clientID != "" && clientID == c.Creator {
		return RoleOwner
	}
	if r, ok := c.Roles[clientID]; ok && r != "" {
		return r
	}
	return RoleMember
}

// SilencedAt reports whether clientID may not send at t.
func (c *Conversation) SilencedAt(clientID string, t time.Time) bool {
	until, ok := c.Silenced[clientID]
	return ok && (until.IsZero() || t.Before(until))
}

// HasMember reports whether clientID is a member of c.
func (c *Conversation) HasMember(clientID string) bool {
	for _, m := range c.Members {
		if m == clientID {
			return true
		}
	}
	return false
}

// Message is a stored (or, for transient and will messages, passing) message.
type Message struct {
	ID        string // server message id ("uid"/"id"/"mid" on the wire)
	ConvID    string
	From      string // sender client id
	Data      string // body: plain text or a JSON typed-message body
	Binary    []byte // binary body (binaryMsg); Data is empty when set
	Timestamp int64  // server timestamp, strictly increasing per conversation
	// Seq is the message's position in its conversation: 1, 2, 3... with no
	// gaps, assigned with Timestamp. 0 for messages that are not stored.
	Seq int64
	// ClientMsgID is the sender's de-duplication key ("dt"); (From,
	// ClientMsgID) is unique among stored messages. May be empty.
	ClientMsgID string
	MentionAll  bool
	MentionPids []string
	Receipt     bool // sender asked for receipts
	Transient   bool // never stored; delivered to online members only
	// System marks a message the application itself sends (Hub.Send with
	// SendOptions.System, service-conversation broadcasts): the sender
	// need not be a member, and no cursor of the sender moves.
	System bool
	// To, when not nil, addresses the message to these members only (a
	// service conversation's message to some subscribers): the others do
	// not get it and do not see it in history. Empty and non-nil: the
	// message reaches nobody but its sender (a subscriber's message to
	// the service).
	To []string
	// NoSync keeps the message from the sender's own online devices (the
	// REST API's no_sync): only its recipients get it live. It is a
	// delivery flag, not stored: stores copy it, like the other input
	// fields, onto the message AppendMessages returns, and history reads
	// never have it.
	NoSync bool
	// PatchTimestamp is when the message was last edited or recalled; 0 if
	// never.
	PatchTimestamp int64
	Recalled       bool
	// PatchCode and PatchReason explain a system edit (hooks, keyword
	// filter): positive codes come from the app, negative ones from
	// built-in mechanisms (-4408 keyword filter). Zero for a sender's edit.
	PatchCode   int
	PatchReason string
}

// Mentions reports whether clientID is mentioned by m (listed or mention-all).
func (m *Message) Mentions(clientID string) bool {
	if m.MentionAll {
		return true
	}
	for _, p := range m.MentionPids {
		if p == clientID {
			return true
		}
	}
	return false
}

// RecalledBody is the body of a recalled message everywhere (history, pushes).
const RecalledBody = `{"_lctype":-127}`

// Patch edits or recalls a stored message.
type Patch struct {
	ConvID      string
	MessageID   string
	From        string // who asks; the store checks it is the sender unless System
	System      bool   // a system edit (hook, filter): skips the ownership check
	Recall      bool
	Data        string // new body; ignored for a recall (RecalledBody is stored)
	Binary      []byte
	MentionAll  bool
	MentionPids []string
	PatchCode   int
	PatchReason string
	// Timestamp is the patch time; the store uses time.Now when zero.
	Timestamp int64
}

// Member is one client's standing in a conversation, with its cursors.
type Member struct {
	ConvID   string
	ClientID string
	// DeliveredAt is the timestamp up to which messages were delivered to
	// (acknowledged by) this client; 0 if none.
	DeliveredAt int64
	// ReadAt and ReadMessageID mark the newest message this client read.
	ReadAt        int64
	ReadMessageID string
	JoinedAt      time.Time
	// Role is the member's role; RoleMember for most (Members fills it;
	// the creator is RoleOwner).
	Role MemberRole
}

// Cursor is where one client's delivered and read cursors in one
// conversation should be moved to. Stores only move cursors forward: a
// Cursor behind the stored one changes nothing.
type Cursor struct {
	ConvID   string
	ClientID string
	// DeliveredAt moves the delivered cursor (0 leaves it).
	DeliveredAt int64
	// ReadSeq, ReadAt and ReadMessageID name the newest message read: its
	// Seq, Timestamp and ID (ReadSeq 0 leaves the read cursor). Moving the
	// read cursor moves the delivered cursor to at least ReadAt.
	ReadSeq       int64
	ReadAt        int64
	ReadMessageID string
}

// UnreadTuple is a conversation with unread messages for one client, as sent
// in the unread notification after login.
type UnreadTuple struct {
	ConvID    string
	Unread    int
	Mentioned bool     // the client was mentioned (or all were) after its read cursor
	Last      *Message // newest message of the conversation
}

// Will is a client's will message: sent to its conversation when the client's
// connection drops without a logout. One per client.
type Will struct {
	ClientID string
	Message  Message // ConvID, Data, mentions...; ID and Timestamp are set when sent
	SetAt    time.Time
}

// Revocation voids the session tokens of a client (or of one of its
// devices) issued before At.
type Revocation struct {
	ClientID string
	Device   string // "" for every device
	At       time.Time
}

// HistoryDirection orders a history query.
type HistoryDirection int

const (
	// Older takes the Limit messages just before Start (paging back in
	// time, what conversation.queryMessages does by default).
	Older HistoryDirection = iota
	// Newer takes the Limit messages just after Start.
	Newer
)

// HistoryQuery selects stored messages of one conversation.
//
// With Older, messages have Timestamp < Start (<= when StartInclusive; no
// bound when Start is 0) and > End (>= when EndInclusive; no bound when End
// is 0), and the Limit newest of them are returned. With Newer, Timestamp >
// Start and < End, and the Limit oldest are returned. Results are always in
// ascending timestamp order.
//
// StartMessageID and EndMessageID break ties between messages with equal
// timestamps from other stores; stores that keep timestamps unique per
// conversation may ignore them.
type HistoryQuery struct {
	ConvID         string
	Direction      HistoryDirection
	Start          int64
	StartInclusive bool
	StartMessageID string
	End            int64
	EndInclusive   bool
	EndMessageID   string
	Limit          int // 1..1000; 0 means 20
	// Type, when non-zero, keeps only typed messages whose "_lctype" equals it.
	Type int
	// ReceiptOnly keeps only messages whose sender asked for receipts.
	ReceiptOnly bool
	// Viewer, when set, leaves out messages addressed to other clients
	// (Message.To) unless Viewer sent them.
	Viewer string
	// From, when set, keeps only the messages From sent.
	From string
}

// ConversationQuery selects conversations. Zero fields do not filter; the
// fields that are set must all match.
type ConversationQuery struct {
	// Where, when not nil, keeps conversations that f.Match. Stores call
	// Where.Validate and answer ErrConvQueryFailed for invalid trees; they
	// assume the caller bounded the tree's size (package hub parses the
	// SDK's where with limits).
	Where *Filter
	IDs   []string // objectId $in
	// Member keeps conversations that have this client as a member.
	Member string
	// AllMembers keeps conversations whose members include all of these ($all).
	AllMembers []string
	// MemberCount, when > 0, keeps conversations with exactly that many
	// members ($size).
	MemberCount int
	Transient   *bool
	System      *bool
	Temporary   *bool
	// Sort is a comma-separated list of fields, "-" prefix for descending,
	// as ParseSort reads it: any Filter field but m and mu, custom
	// attributes included ("attr.rank,-lm"). Default "-lm" (newest message
	// first; conversations without one by creation time). Ties are broken
	// by ascending ID. Stores answer ErrConvQueryFailed for unknown fields.
	Sort  string
	Limit int // 0 means 10; capped at 1000
	Skip  int
	// WithLastMessage fills Conversation.LastMessage.
	WithLastMessage bool
}

// ConversationUpdate changes a conversation's name and attributes.
type ConversationUpdate struct {
	ID   string
	Name *string // nil leaves it
	// Attrs are merged into the custom attributes (top-level keys replace;
	// a JSON null value deletes the key).
	Attrs json.RawMessage
	// Mute and Unmute add client ids to, and remove them from, the
	// conversation's Muted list (members who get no push for it).
	Mute   []string
	Unmute []string
}

// AppendResult tells what AppendMessages did with one message.
type AppendResult struct {
	Message *Message // the stored message, with ID, Timestamp and Seq
	// Duplicate is true when (From, ClientMsgID) was stored before: Message
	// is then the first stored copy and nothing new was written.
	Duplicate bool
	Err       error // per-message failure (e.g. not a member); nil on success
}

// ReadStore is the read side of a Store: what a host application may read
// directly (Hub.Store returns one). Implementations must be safe for
// concurrent use.
type ReadStore interface {
	// GetConversation returns one conversation with its members (and its
	// last message). ErrConvNotFound when missing or expired.
	GetConversation(ctx context.Context, id string) (*Conversation, error)

	// QueryConversations returns the conversations matching q, sorted and
	// paged. Expired temporary conversations are left out.
	QueryConversations(ctx context.Context, q ConversationQuery) ([]*Conversation, error)

	// GetMessage returns one stored message. ErrMessageNotFound when it is
	// missing or in another conversation.
	GetMessage(ctx context.Context, convID, msgID string) (*Message, error)

	// History returns stored messages as HistoryQuery documents.
	History(ctx context.Context, q HistoryQuery) ([]*Message, error)

	// AppHistory is History over every conversation (q.ConvID is
	// ignored, every other field applies): the application's whole history,
	// or with q.From one client's messages. Messages are ordered by
	// (Timestamp, ID), so StartMessageID and EndMessageID page exactly
	// through messages of different conversations with equal
	// timestamps. It must be an indexed query, not a scan of messages.
	AppHistory(ctx context.Context, q HistoryQuery) ([]*Message, error)

	// PatchesSince returns messages of conversations clientID belongs to
	// whose PatchTimestamp is > since, oldest patch first, at most limit.
	PatchesSince(ctx context.Context, clientID string, since int64, limit int) ([]*Message, error)

	// Members returns the cursors of every member of convID.
	Members(ctx context.Context, convID string) ([]Member, error)

	// Blocked returns which of clientIDs are on the conversation's
	// blacklist.
	Blocked(ctx context.Context, convID string, clientIDs []string) ([]string, error)

	// ListSilenced and ListBlocked page through a conversation's silenced
	// members and blacklist in client id order: ids after `after`, at most
	// limit.
	ListSilenced(ctx context.Context, convID, after string, limit int) ([]string, error)
	ListBlocked(ctx context.Context, convID, after string, limit int) ([]string, error)

	// Unread returns, for every conversation clientID belongs to that has
	// messages from others after its read cursor, the unread count, the
	// newest message and whether clientID was mentioned after the cursor.
	// With since > 0 only conversations whose newest message is newer than
	// since are returned. At most limit tuples (0: no limit), newest first.
	// It must be an indexed query over the client's memberships, not a scan
	// of messages.
	Unread(ctx context.Context, clientID string, since int64, limit int) ([]UnreadTuple, error)
}

// Store keeps conversations, messages, cursors and will messages. It is the
// single source of truth. A hub caches what it reads and is told of every
// change because every change goes through it: give a Store to one hub (or
// to several hubs joined by a broker) and write through the hub, never to
// the Store directly. Implementations must be safe for concurrent use.
//
// Errors: methods return *Error values with the codes named in their docs
// for bad input or missing things; any other error is an infrastructure
// failure the caller logs and reports as ErrInternal.
type Store interface {
	ReadStore

	// CreateConversation stores c with a new ID, CreatedAt and UpdatedAt.
	// Members are de-duplicated and sorted. When c.Unique is set and a
	// unique conversation with the same member set exists, that one is
	// returned with created == false and nothing is written. Temporary
	// conversations need ExpiresAt. Returns ErrConvFull when members exceed
	// the store's limit, ErrInvalidMessage for empty or malformed client
	// ids.
	CreateConversation(ctx context.Context, c *Conversation) (conv *Conversation, created bool, err error)

	// UpdateConversation applies u and returns the updated conversation.
	// ErrConvNotFound when missing.
	UpdateConversation(ctx context.Context, u ConversationUpdate) (*Conversation, error)

	// AddMembers adds client ids to a conversation; ids already present are
	// ignored. Returns the updated conversation and the ids actually added.
	// New members' cursors start at the conversation's newest message, so
	// history before joining does not count as unread.
	AddMembers(ctx context.Context, convID string, clientIDs []string) (conv *Conversation, added []string, err error)

	// RemoveMembers removes client ids (absent ones are ignored) with their
	// cursors. Returns the updated conversation and the ids removed.
	RemoveMembers(ctx context.Context, convID string, clientIDs []string) (conv *Conversation, removed []string, err error)

	// AppendMessages stores messages, possibly of several conversations,
	// and returns one result per message in the same order. Each stored
	// message gets a unique ID, a Seq one above its conversation's previous
	// one, and a Timestamp strictly greater than the conversation's previous
	// one (now, or previous+1 on collision). A message whose (From,
	// ClientMsgID) was stored before is not stored again: its result has
	// Duplicate and the first copy. It returns only after the messages are
	// durable. Per-message errors: ErrConvNotFound, ErrInvalidTarget (sender
	// not a member of a non-transient conversation, unless the message is
	// System), ErrMessageTooLarge. Appending also moves the sender's read
	// and delivered cursors to the new message (one's own messages are
	// never unread); System messages move no cursor.
	//
	// Implementations batch concurrent calls into one transaction (group
	// commit).
	AppendMessages(ctx context.Context, msgs []*Message) ([]AppendResult, error)

	// DeleteConversation removes a conversation with its members and
	// their cursors, its messages, silenced members and blacklist.
	// ErrConvNotFound when missing.
	DeleteConversation(ctx context.Context, convID string) error

	// DeleteMessage removes one stored message. The conversation's head
	// (Seq, newest timestamp) does not move back: later messages still
	// get higher ones. ErrMessageNotFound when missing or in another
	// conversation.
	DeleteMessage(ctx context.Context, convID, msgID string) error

	// PatchMessage edits or recalls a message and returns it as stored.
	// ErrMessageNotFound when missing or in another conversation,
	// ErrMessageOwnership when p.From is not the sender and p.System is
	// false. A recall stores RecalledBody and clears mentions.
	PatchMessage(ctx context.Context, p Patch) (*Message, error)

	// SetRole gives a member a role; RoleMember (or "") makes it an
	// ordinary member again. RoleOwner cannot be given (the creator is the
	// owner). ErrConvNotFound, ErrConvMembershipNeeded when clientID is
	// not a member.
	SetRole(ctx context.Context, convID, clientID string, role MemberRole) error

	// Silence stops clientIDs from sending until `until` (zero: until
	// Unsilence); Unsilence lets them send again. Ids need not be
	// members. ErrConvNotFound.
	Silence(ctx context.Context, convID string, clientIDs []string, until time.Time) error
	Unsilence(ctx context.Context, convID string, clientIDs []string) error

	// Block puts clientIDs on the conversation's blacklist and removes
	// those that are members (with their cursors); blocked clients cannot
	// be added until unblocked. It returns the conversation and the ids
	// that were removed. Unblock takes ids off the list. ErrConvNotFound.
	Block(ctx context.Context, convID string, clientIDs []string) (conv *Conversation, removed []string, err error)
	Unblock(ctx context.Context, convID string, clientIDs []string) error

	// UpdateCursors moves delivered and read cursors forward, many at once
	// (the hub coalesces client acks and reads and writes them in
	// batches). Cursors of non-members and unknown conversations are
	// ignored; a cursor never moves backwards. It returns after the moves
	// are durable.
	UpdateCursors(ctx context.Context, cursors []Cursor) error

	// SetWill stores w as clientID's will message, replacing any earlier one.
	SetWill(ctx context.Context, w Will) error

	// TakeWill removes and returns clientID's will (nil, nil when none).
	TakeWill(ctx context.Context, clientID string) (*Will, error)

	// ClearWill removes clientID's will if any.
	ClearWill(ctx context.Context, clientID string) error

	// RevokeSessions records that session tokens of clientID issued before
	// at are void: those of one device (device, the SDK's device id or
	// tag), or of every device (device ""). A later call moves the time
	// forward, never back.
	RevokeSessions(ctx context.Context, clientID, device string, at time.Time) error

	// Revocations returns the revocations made after since (the hub loads
	// those younger than its session token lifetime when it starts).
	Revocations(ctx context.Context, since time.Time) ([]Revocation, error)

	// Close releases the store's resources after pending writes finished.
	Close() error
}

// PresenceStore keeps which hub node holds which live sessions, for
// several hubs joined by a broker (hub.Config.Broker). Each node holds a
// lease it renews; a node whose lease ran out is dead, and the first
// surviving node to reap it gets its sessions (to send their will messages
// and tell the others they are offline). Implementations must be safe for
// concurrent use by several processes.
type PresenceStore interface {
	// KeepNode records that node lives until until (creating its lease or
	// extending it). It reports false when the node had no lease: it is
	// new, or it was reaped (its sessions were declared gone while it
	// could not renew).
	KeepNode(ctx context.Context, node string, until time.Time) (existed bool, err error)

	// UpdatePresence adds and removes sessions of node (removals are
	// session ids). Adding a session id that exists replaces it.
	UpdatePresence(ctx context.Context, node string, add []Presence, remove []string) error

	// ListPresence returns every session of every node with a lease.
	ListPresence(ctx context.Context) ([]Presence, error)

	// ReapNodes removes the nodes whose lease ended before now, with their
	// sessions (and sessions of nodes with no lease at all), and returns
	// what it removed. Of several concurrent callers only one gets each
	// node.
	ReapNodes(ctx context.Context, now time.Time) (nodes []string, sessions []Presence, err error)

	// DropNode removes a node and its sessions (it is shutting down).
	DropNode(ctx context.Context, node string) error
}

// Presence is one live session of a hub node.
type Presence struct {
	Node     string
	Session  string // unique within Node
	ClientID string
	Tag      string
	DeviceID string
	Since    time.Time
}

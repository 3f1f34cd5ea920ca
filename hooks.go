package realtime

import (
	"context"
	"encoding/json"
	"fmt"
)

// Hooks let a host application customise the hub in Go, the way LeanCloud
// apps did with cloud-function hooks (_messageReceived, _receiversOffline,
// ...). Each event has its own small interface; a hook value may implement
// any number of them, and the hub type-asserts the values it is given once,
// in hub.New. Every hook gets a context with a deadline (hub.Config
// HookTimeout). A hook that returns an error other than a *Rejection, times
// out or panics has failed: by default the hub logs that and goes on as if
// the hook were absent (hub.Config HookFailure changes that to refusing the
// request with ErrInternal).
//
// Order and isolation: the hooks that decide something (MessageReceived,
// MessageUpdate, and the Conversation{Add,Remove,Update} before-hooks) run
// in the conversation's lane: one conversation's hooks run one at a time,
// in the order its events happen, and hooks of different conversations run
// concurrently, so a slow hook delays only its own conversation (its later
// messages wait for it), never other conversations or a client's socket.
// ConversationStart runs before the conversation exists, on the request's
// own goroutine. The after-hooks (MessageSent, ReceiversOffline,
// Conversation{Started,Added,Removed}, Client{Online,Offline}) run off the
// request path on the hub's workers, in no guaranteed order. Keep
// MessageReceived fast: every message of its conversation waits for it.

// Rejection is returned by a hook (as its error) to refuse a request. The
// client gets the event's rejection code (4402 for messages, 4405 for message
// updates, 4305 for conversation changes) with AppCode and Detail.
type Rejection struct {
	AppCode int    // the app's own code, sent to the client as appCode
	Detail  string // sent to the client as detail
}

func (r *Rejection) Error() string {
	return fmt.Sprintf("rejected by hook: %d %s", r.AppCode, r.Detail)
}

// Reject returns a *Rejection with the given app code and detail.
func Reject(appCode int, detail string) error { return &Rejection{AppCode: appCode, Detail: detail} }

// MessageEvent describes a message passing through the hub.
type MessageEvent struct {
	Conversation *Conversation // the target conversation (do not modify)
	Message      *Message      // the message; ID and Timestamp are empty before it is stored
	To           []string      // recipients: members except the sender
	PushData     json.RawMessage
	SourceIP     string
	Will         bool // a will message
}

// MessageReceivedResult is what a MessageReceivedHook decides. The zero
// value (or a nil result) lets the message through unchanged.
type MessageReceivedResult struct {
	// Drop refuses the message: the sender's send fails with 4402 and
	// AppCode/Detail. Returning a *Rejection error does the same.
	Drop    bool
	AppCode int
	Detail  string
	// Data, when non-nil, replaces the message body. The rewritten message
	// is stored and delivered, and the sender gets MESSAGE_UPDATE with
	// reason {code: PatchCode, detail: PatchReason} (PatchCode 0 means 1, a
	// positive app code).
	Data        *string
	PatchCode   int
	PatchReason string
	// To, when non-nil, replaces the recipients (a subset or other members).
	To []string
}

// MessageReceivedHook runs after a message's recipients are known and before
// it is stored and delivered (LeanCloud's _messageReceived).
type MessageReceivedHook interface {
	MessageReceived(ctx context.Context, ev *MessageEvent) (*MessageReceivedResult, error)
}

// MessageReceivedFunc adapts a function to MessageReceivedHook.
type MessageReceivedFunc func(ctx context.Context, ev *MessageEvent) (*MessageReceivedResult, error)

// MessageReceived calls f.
func (f MessageReceivedFunc) MessageReceived(ctx context.Context, ev *MessageEvent) (*MessageReceivedResult, error) {
	return f(ctx, ev)
}

// MessageSentEvent is a delivered message with who was online.
type MessageSentEvent struct {
	MessageEvent
	Online  []string
	Offline []string
}

// MessageSentHook runs after a message was stored and delivered
// (_messageSent). Its result is ignored; it must not slow sending, so the
// hub runs it off the send path.
type MessageSentHook interface {
	MessageSent(ctx context.Context, ev *MessageSentEvent) error
}

// MessageSentFunc adapts a function to MessageSentHook.
type MessageSentFunc func(ctx context.Context, ev *MessageSentEvent) error

// MessageSent calls f.
func (f MessageSentFunc) MessageSent(ctx context.Context, ev *MessageSentEvent) error {
	return f(ctx, ev)
}

// ReceiversOfflineEvent describes a stored message some recipients missed.
type ReceiversOfflineEvent struct {
	MessageEvent
	Offline         []string // recipients with no live session
	MentionOffline  []string // the offline recipients the message mentions
	DefaultPushData json.RawMessage
}

// ReceiversOfflineResult decides the push for offline recipients. The zero
// value pushes the default content to every offline recipient.
type ReceiversOfflineResult struct {
	Skip bool // send no push
	// Offline, when non-nil, replaces the recipients to push to.
	Offline []string
	// PushMessage, when non-nil, is the push content (a JSON object); it
	// has the highest priority, above the sender's pushData and the static
	// template.
	PushMessage json.RawMessage
	// Force pushes to members who muted the conversation too.
	Force bool
}

// ReceiversOfflineHook runs before pushes are sent for offline recipients
// (_receiversOffline). Not called for transient conversations or messages.
type ReceiversOfflineHook interface {
	ReceiversOffline(ctx context.Context, ev *ReceiversOfflineEvent) (*ReceiversOfflineResult, error)
}

// ReceiversOfflineFunc adapts a function to ReceiversOfflineHook.
type ReceiversOfflineFunc func(ctx context.Context, ev *ReceiversOfflineEvent) (*ReceiversOfflineResult, error)

// ReceiversOffline calls f.
func (f ReceiversOfflineFunc) ReceiversOffline(ctx context.Context, ev *ReceiversOfflineEvent) (*ReceiversOfflineResult, error) {
	return f(ctx, ev)
}

// MessageUpdateEvent describes an edit or recall a client asked for.
type MessageUpdateEvent struct {
	Conversation *Conversation
	Original     *Message // the message as stored
	Patch        *Patch   // the requested change
	To           []string // members who will be told
}

// MessageUpdateResult decides an edit or recall. The zero value lets it
// through.
type MessageUpdateResult struct {
	Drop    bool // refuse with 4405 and AppCode/Detail
	AppCode int
	Detail  string
	Data    *string  // replaces the new body (edits only)
	To      []string // replaces who is told
}

// MessageUpdateHook runs before an edit or recall is applied (_messageUpdate).
type MessageUpdateHook interface {
	MessageUpdate(ctx context.Context, ev *MessageUpdateEvent) (*MessageUpdateResult, error)
}

// MessageUpdateFunc adapts a function to MessageUpdateHook.
type MessageUpdateFunc func(ctx context.Context, ev *MessageUpdateEvent) (*MessageUpdateResult, error)

// MessageUpdate calls f.
func (f MessageUpdateFunc) MessageUpdate(ctx context.Context, ev *MessageUpdateEvent) (*MessageUpdateResult, error) {
	return f(ctx, ev)
}

// ConversationOp names a conversation change.
type ConversationOp string

const (
	ConvStart  ConversationOp = "start"
	ConvAdd    ConversationOp = "add"
	ConvRemove ConversationOp = "remove"
	ConvUpdate ConversationOp = "update"
)

// ConversationEvent describes a conversation change. Before hooks may refuse
// it by returning a *Rejection; after hooks' errors are logged only.
type ConversationEvent struct {
	Op           ConversationOp
	InitBy       string        // the client asking
	Conversation *Conversation // nil for a start before it exists
	Members      []string      // members of a start; the ids added or removed
	Name         string        // start: name
	Attrs        json.RawMessage
}

// Before hooks: return a *Rejection to refuse (the client gets 4305).

// ConversationStartHook runs before a conversation is created.
type ConversationStartHook interface {
	ConversationStart(ctx context.Context, ev *ConversationEvent) error
}

// ConversationAddHook runs before members are added.
type ConversationAddHook interface {
	ConversationAdd(ctx context.Context, ev *ConversationEvent) error
}

// ConversationRemoveHook runs before members are removed.
type ConversationRemoveHook interface {
	ConversationRemove(ctx context.Context, ev *ConversationEvent) error
}

// ConversationUpdateHook runs before name or attributes change.
type ConversationUpdateHook interface {
	ConversationUpdate(ctx context.Context, ev *ConversationEvent) error
}

// After hooks: run off the request path, errors only logged.

// ConversationStartedHook runs after a conversation was created.
type ConversationStartedHook interface {
	ConversationStarted(ctx context.Context, ev *ConversationEvent) error
}

// ConversationAddedHook runs after members were added.
type ConversationAddedHook interface {
	ConversationAdded(ctx context.Context, ev *ConversationEvent) error
}

// ConversationRemovedHook runs after members were removed.
type ConversationRemovedHook interface {
	ConversationRemoved(ctx context.Context, ev *ConversationEvent) error
}

// ConversationFunc adapts a function to every conversation hook interface
// (before and after); use ConversationHook to pick the events it handles.
type ConversationFunc func(ctx context.Context, ev *ConversationEvent) error

// ConversationHook returns a hook that calls f for the given operations
// before they happen (before == true: it may reject) or after.
func ConversationHook(before bool, f ConversationFunc, ops ...ConversationOp) any {
	return &convHook{before: before, f: f, ops: ops}
}

type convHook struct {
	before bool
	f      ConversationFunc
	ops    []ConversationOp
}

func (h *convHook) wants(op ConversationOp, before bool) bool {
	if h.before != before {
		return false
	}
	if len(h.ops) == 0 {
		return true
	}
	for _, o := range h.ops {
		if o == op {
			return true
		}
	}
	return false
}

func (h *convHook) call(ctx context.Context, ev *ConversationEvent, before bool) error {
	if !h.wants(ev.Op, before) {
		return nil
	}
	return h.f(ctx, ev)
}

func (h *convHook) ConversationStart(ctx context.Context, ev *ConversationEvent) error {
	return h.call(ctx, ev, true)
}
func (h *convHook) ConversationAdd(ctx context.Context, ev *ConversationEvent) error {
	return h.call(ctx, ev, true)
}
func (h *convHook) ConversationRemove(ctx context.Context, ev *ConversationEvent) error {
	return h.call(ctx, ev, true)
}
func (h *convHook) ConversationUpdate(ctx context.Context, ev *ConversationEvent) error {
	return h.call(ctx, ev, true)
}
func (h *convHook) ConversationStarted(ctx context.Context, ev *ConversationEvent) error {
	return h.call(ctx, ev, false)
}
func (h *convHook) ConversationAdded(ctx context.Context, ev *ConversationEvent) error {
	return h.call(ctx, ev, false)
}
func (h *convHook) ConversationRemoved(ctx context.Context, ev *ConversationEvent) error {
	return h.call(ctx, ev, false)
}

// ClientEvent describes a client going online or offline.
type ClientEvent struct {
	ClientID string
	Tag      string
	DeviceID string
	// Reason says why a client went offline: "logout", "conflict",
	// "disconnect" (network drop, idle timeout, process killed), "shutdown".
	Reason string
}

// ClientOnlineHook runs after a client logged in (_clientOnline).
type ClientOnlineHook interface {
	ClientOnline(ctx context.Context, ev *ClientEvent) error
}

// ClientOfflineHook runs after a client logged out or dropped (_clientOffline).
type ClientOfflineHook interface {
	ClientOffline(ctx context.Context, ev *ClientEvent) error
}

// ClientOnlineFunc adapts a function to ClientOnlineHook.
type ClientOnlineFunc func(ctx context.Context, ev *ClientEvent) error

// ClientOnline calls f.
func (f ClientOnlineFunc) ClientOnline(ctx context.Context, ev *ClientEvent) error { return f(ctx, ev) }

// ClientOfflineFunc adapts a function to ClientOfflineHook.
type ClientOfflineFunc func(ctx context.Context, ev *ClientEvent) error

// ClientOffline calls f.
func (f ClientOfflineFunc) ClientOffline(ctx context.Context, ev *ClientEvent) error {
	return f(ctx, ev)
}

package hub

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/cluster"
	"github.com/leanhub/realtime/internal/wire"
)

// The Go API: what the host application does to conversations, through
// the same engine operations as the clients' commands (the same checks,
// hooks, notifications to online members and cache updates). The
// application is not a client: member-change policies do not apply to it,
// and it may act as any client id.

// SendOptions tune Hub.Send.
type SendOptions struct {
	// Transient delivers to online members only and stores nothing.
	Transient bool
	// System sends as the application: m.From need not be a member (a
	// service account, a bot, "system"), the message is stored and
	// delivered to every member, and no cursor of m.From moves. Without
	// it m.From must be a member, as for a client.
	System bool
	// SkipHooks sends without running the MessageReceived hooks.
	SkipHooks bool
	// PushData is the push content for offline members (a JSON object), as
	// a client's pushData.
	PushData json.RawMessage
	// NoSync keeps the message from m.From's own online devices (by
	// default they get it, as any message of their client).
	NoSync bool
}

// Send sends a message from the Go side and delivers it like one sent by a
// client: m.ConvID, m.From and m.Data (a plain string or a typed-message
// body such as typedmsg.NewText("hi").Encode()) or m.Binary are required;
// m.MentionPids, m.MentionAll, m.Receipt and m.ClientMsgID (a retry with
// the same one stores nothing new) are honoured. It checks the body like a
// client's (size, mentions, Config.MessageTypes), runs the MessageReceived
// hooks, stores the message, delivers it to the members online (and the
// sender's own devices) and schedules pushes. It returns the stored
// message with its ID and Timestamp.
//
// Service (system) conversations, created with CreateConversation and
// System set: a broadcast is a Send with System (every subscriber gets it,
// now or in history); with m.To set it goes to those subscribers only
// (and only they see it in history). A subscriber's own messages to the
// service reach the application's hooks, not the other subscribers.
//
// Errors: ErrInvalidMessage (missing fields, bad mentions, m.To outside a
// service conversation), 4409 (body too large), ErrInvalidTarget (no such
// conversation, or m.From not a member without System),
// ErrTempConvExpired, 4402 (a hook refused it).
func (h *Hub) Send(ctx context.Context, m *realtime.Message, opts *SendOptions) (*realtime.Message, error) {
	var o SendOptions
	if opts != nil {
		o = *opts
	}
	if m == nil || m.ConvID == "" || !validClientID(m.From) {
		return nil, realtime.ErrInvalidMessage.WithDetail("ConvID and a valid From are required")
	}
	if err := h.stopped(); err != nil {
		return nil, err
	}
	msg := *m
	msg.ID, msg.Timestamp, msg.Seq = "", 0, 0
	msg.Transient = o.Transient
	msg.System = o.System
	msg.NoSync = o.NoSync
	type result struct {
		m   *realtime.Message
		err error
	}
	ch := make(chan result, 1)
	h.eng.send(&sendRequest{msg: &msg, pushData: o.PushData, skipHooks: o.SkipHooks,
		done: func(m *realtime.Message, err error) { ch <- result{m, err} }})
	select {
	case r := <-ch:
		return r.m, r.err
	case <-ctx.Done():
		// The message may still be stored (a retry with the same
		// ClientMsgID is then a duplicate).
		return nil, ctx.Err()
	}
}

// CreateConversation creates a conversation as c.Creator (who becomes a
// member unless the conversation is a chat room or a system conversation)
// and tells its members, as a client's createConversation does:
// c.Members, c.Name, c.Attrs, c.Unique, c.Transient (a chat room), c.System,
// c.Temporary with c.ExpiresAt (default one day). A unique conversation
// whose member set exists already is returned as it is (created false).
// The ConversationStart hooks run and may refuse it (4305).
func (h *Hub) CreateConversation(ctx context.Context, c *realtime.Conversation) (conv *realtime.Conversation, created bool, err error) {
	if c == nil {
		return nil, false, realtime.ErrInvalidCommand.WithDetail("nil conversation")
	}
	if c.Creator != "" && !validClientID(c.Creator) {
		return nil, false, realtime.ErrInvalidMessage.WithDetail("invalid creator %q", c.Creator)
	}
	if err := h.stopped(); err != nil {
		return nil, false, err
	}
	return h.eng.createConversation(ctx, actor{client: c.Creator, api: true}, c)
}

// AddMembers adds clients to a conversation on behalf of initBy (the
// client id shown as who invited them; "" for the application), tells the
// new members (INVITED) and the others (MEMBERS_JOINED), and returns the
// ids actually added. The ConversationAdd hooks run and may refuse it.
// Blocked clients are not added: the others are, and the error is
// ErrBlockedByConv naming the blocked ones.
func (h *Hub) AddMembers(ctx context.Context, convID, initBy string, clientIDs []string) ([]string, error) {
	if err := h.stopped(); err != nil {
		return nil, err
	}
	res, err := h.eng.changeMembers(ctx, actor{client: initBy, api: true}, convID, clientIDs, true)
	if err == nil && len(res.refused) > 0 {
		err = res.refused[0].err.WithDetail("blocked: %v", res.refused[0].ids)
	}
	return res.changed, err
}

// RemoveMembers removes clients from a conversation on behalf of initBy,
// tells them (KICKED) and the others (MEMBERS_LEFT), and returns the ids
// actually removed. From the moment it returns, the removed clients get
// none of the conversation's messages. The ConversationRemove hooks run
// and may refuse it.
func (h *Hub) RemoveMembers(ctx context.Context, convID, initBy string, clientIDs []string) ([]string, error) {
	if err := h.stopped(); err != nil {
		return nil, err
	}
	res, err := h.eng.changeMembers(ctx, actor{client: initBy, api: true}, convID, clientIDs, false)
	return res.changed, err
}

// UpdateConversation changes a conversation's name and attributes (merged
// as realtime.ConversationUpdate says) or its muted members, on behalf of
// initBy, and tells the members online (UPDATED). The ConversationUpdate
// hooks run for name and attribute changes and may refuse them.
func (h *Hub) UpdateConversation(ctx context.Context, initBy string, u realtime.ConversationUpdate) (*realtime.Conversation, error) {
	if err := h.stopped(); err != nil {
		return nil, err
	}
	return h.eng.updateConversation(ctx, actor{client: initBy, api: true}, u, "")
}

// Edit replaces the body of a stored message as the application (no
// ownership check; Config.DisableEdit does not apply), with an optional
// reason shown to clients (code > 0 for an app edit). Members online get
// MESSAGE_UPDATE; the MessageUpdate hooks run and may refuse it (4405).
func (h *Hub) Edit(ctx context.Context, convID, msgID, data string, code int, reason string) (*realtime.Message, error) {
	if err := h.stopped(); err != nil {
		return nil, err
	}
	return h.eng.patch(ctx, patchRequest{system: true, patch: realtime.Patch{ConvID: convID, MessageID: msgID,
		Data: data, PatchCode: code, PatchReason: reason}})
}

// Recall recalls a stored message as the application: its body becomes
// realtime.RecalledBody and members online get MESSAGE_RECALL.
func (h *Hub) Recall(ctx context.Context, convID, msgID string) (*realtime.Message, error) {
	if err := h.stopped(); err != nil {
		return nil, err
	}
	return h.eng.patch(ctx, patchRequest{system: true, patch: realtime.Patch{ConvID: convID, MessageID: msgID, Recall: true}})
}

// DeleteConversation removes a conversation with its members, messages
// and moderation lists, on every node: from the moment it returns, sends
// to it fail (4401) and it is in no query. Members are not told (as on
// LeanCloud); their SDKs find out on their next operation on it.
// ErrConvNotFound when missing.
func (h *Hub) DeleteConversation(ctx context.Context, convID string) error {
	if err := h.stopped(); err != nil {
		return err
	}
	return h.eng.deleteConversation(ctx, convID)
}

// DeleteMessage removes a stored message from the server (history,
// unread sync); clients that have it keep it, as on LeanCloud.
// ErrMessageNotFound when missing.
func (h *Hub) DeleteMessage(ctx context.Context, convID, msgID string) error {
	if err := h.stopped(); err != nil {
		return err
	}
	return h.eng.deleteMessage(ctx, convID, msgID)
}

// AppHistory returns stored messages of every conversation (q.ConvID is
// ignored; q.From keeps one client's), as realtime.ReadStore.AppHistory.
func (h *Hub) AppHistory(ctx context.Context, q realtime.HistoryQuery) ([]*realtime.Message, error) {
	q.Limit = min(max(q.Limit, 0), historyMaxLimit)
	return h.store.AppHistory(ctx, q)
}

// History returns stored messages of a conversation (see
// realtime.HistoryQuery), as the application sees them: no membership
// check. ErrConvNotFound for a missing conversation.
func (h *Hub) History(ctx context.Context, q realtime.HistoryQuery) ([]*realtime.Message, error) {
	if _, _, err := h.eng.snapshot(ctx, q.ConvID); err != nil {
		return nil, err
	}
	q.Limit = min(max(q.Limit, 0), historyMaxLimit)
	return h.store.History(ctx, q)
}

// Receipts tells who has received and who has read a stored message: the
// members (other than its sender) whose delivered / read cursor is at or
// past it. It works for groups of any size; the cost is one read of the
// conversation's member cursors (O(members)).
func (h *Hub) Receipts(ctx context.Context, convID, msgID string) (delivered, read []string, err error) {
	m, err := h.store.GetMessage(ctx, convID, msgID)
	if err != nil {
		return nil, nil, err
	}
	members, err := h.members(ctx, convID)
	if err != nil {
		return nil, nil, err
	}
	for _, mem := range members {
		if mem.ClientID == m.From {
			continue
		}
		if mem.DeliveredAt >= m.Timestamp || mem.ReadAt >= m.Timestamp {
			delivered = append(delivered, mem.ClientID)
		}
		if mem.ReadAt >= m.Timestamp {
			read = append(read, mem.ClientID)
		}
	}
	sort.Strings(delivered)
	sort.Strings(read)
	return delivered, read, nil
}

// Store returns a read-only view of the store the hub serves, whose cursor
// reads (Members, Unread) include the moves the hub has not written yet.
// Every write goes through the Hub's methods, so that caches,
// notifications and hooks see it.
func (h *Hub) Store() realtime.ReadStore { return storeView{h} }

type storeView struct{ h *Hub }

func (v storeView) GetConversation(ctx context.Context, id string) (*realtime.Conversation, error) {
	return v.h.store.GetConversation(ctx, id)
}

func (v storeView) QueryConversations(ctx context.Context, q realtime.ConversationQuery) ([]*realtime.Conversation, error) {
	return v.h.store.QueryConversations(ctx, q)
}

func (v storeView) GetMessage(ctx context.Context, convID, msgID string) (*realtime.Message, error) {
	return v.h.store.GetMessage(ctx, convID, msgID)
}

func (v storeView) History(ctx context.Context, q realtime.HistoryQuery) ([]*realtime.Message, error) {
	return v.h.store.History(ctx, q)
}

func (v storeView) AppHistory(ctx context.Context, q realtime.HistoryQuery) ([]*realtime.Message, error) {
	return v.h.store.AppHistory(ctx, q)
}

func (v storeView) PatchesSince(ctx context.Context, clientID string, since int64, limit int) ([]*realtime.Message, error) {
	return v.h.store.PatchesSince(ctx, clientID, since, limit)
}

func (v storeView) Blocked(ctx context.Context, convID string, clientIDs []string) ([]string, error) {
	return v.h.store.Blocked(ctx, convID, clientIDs)
}

func (v storeView) ListSilenced(ctx context.Context, convID, after string, limit int) ([]string, error) {
	return v.h.store.ListSilenced(ctx, convID, after, limit)
}

func (v storeView) ListBlocked(ctx context.Context, convID, after string, limit int) ([]string, error) {
	return v.h.store.ListBlocked(ctx, convID, after, limit)
}

func (v storeView) Members(ctx context.Context, convID string) ([]realtime.Member, error) {
	return v.h.members(ctx, convID)
}

func (v storeView) Unread(ctx context.Context, clientID string, since int64, limit int) ([]realtime.UnreadTuple, error) {
	mark := v.h.eng.cursors.mark()
	u, err := v.h.store.Unread(ctx, clientID, since, limit)
	if err != nil {
		return nil, err
	}
	return v.h.eng.cursors.overlayUnread(clientID, u, mark), nil
}

// stopped returns an error once Shutdown has begun.
func (h *Hub) stopped() error {
	if h.isClosing() {
		return realtime.ErrAppNotAvailable.WithDetail("hub shut down")
	}
	return nil
}

// SetRole gives a member of an ordinary conversation a role
// (realtime.RoleManager, or realtime.RoleMember to take it back) on
// behalf of initBy ("" for the application, which may always), and tells
// the members (MEMBER_INFO_UPDATED). A client may change a role only if
// it is the owner or a manager above both roles (4320 otherwise); the
// owner's role cannot change.
func (h *Hub) SetRole(ctx context.Context, convID, initBy, clientID string, role realtime.MemberRole) error {
	if err := h.stopped(); err != nil {
		return err
	}
	return h.eng.setRole(ctx, actor{client: initBy, api: initBy == ""}, convID, clientID, role)
}

// Silence stops clientIDs from sending in a conversation until `until`
// (zero: until Unsilence) and tells the members (MEMBERS_MUTED, and MUTED
// to the targets), as muteMembers does; silenced clients still receive.
// The owner cannot be silenced. It returns the ids silenced.
func (h *Hub) Silence(ctx context.Context, convID string, clientIDs []string, until time.Time) ([]string, error) {
	if err := h.stopped(); err != nil {
		return nil, err
	}
	p, err := h.eng.silence(ctx, actor{api: true}, convID, clientIDs, until, true)
	return p.allowed, err
}

// Unsilence lets silenced clients send again (MEMBERS_UNMUTED).
func (h *Hub) Unsilence(ctx context.Context, convID string, clientIDs []string) error {
	if err := h.stopped(); err != nil {
		return err
	}
	_, err := h.eng.silence(ctx, actor{api: true}, convID, clientIDs, time.Time{}, false)
	return err
}

// Block puts clientIDs on a conversation's blacklist: members among them
// are removed (they get BLOCKED and KICKED, the others MEMBERS_BLOCKED and
// MEMBERS_LEFT), and none of them can join or be added (4548) until
// Unblock. The owner cannot be blocked. It returns the ids blocked.
func (h *Hub) Block(ctx context.Context, convID string, clientIDs []string) ([]string, error) {
	if err := h.stopped(); err != nil {
		return nil, err
	}
	p, err := h.eng.block(ctx, actor{api: true}, convID, clientIDs, true)
	return p.allowed, err
}

// Unblock takes clientIDs off a conversation's blacklist.
func (h *Hub) Unblock(ctx context.Context, convID string, clientIDs []string) error {
	if err := h.stopped(); err != nil {
		return err
	}
	_, err := h.eng.block(ctx, actor{api: true}, convID, clientIDs, false)
	return err
}

// Logout ends every session of clientID on this hub and voids all its
// session tokens (on every node, after restarts too), so that none of its
// devices gets back in with a token: each must log in again (with a
// signature or through the Authenticator, when the hub requires them).
// Its sessions get session closed with 4115 (KICKED_BY_APP) and no will
// message is sent.
func (h *Hub) Logout(ctx context.Context, clientID string) error {
	return h.Kick(ctx, clientID, "logged out by the application")
}

// Kick is Logout with the reason its sessions are told (the detail of
// session closed 4115), as LeanCloud's REST kick: every session of
// clientID on every node ends and its session tokens are void.
func (h *Hub) Kick(ctx context.Context, clientID, reason string) error {
	if !validClientID(clientID) {
		return realtime.ErrInvalidLogin.WithDetail("invalid client id %q", clientID)
	}
	if err := h.revoke(ctx, clientID, ""); err != nil {
		return err
	}
	for _, s := range h.reg.sessionsOf(clientID) {
		h.kick(s, realtime.CodeKickedByApp, "KICKED_BY_APP", reason, "kicked")
	}
	if h.cl != nil {
		h.cl.publishKick(&cluster.Kick{Client: clientID, All: true, Code: realtime.CodeKickedByApp,
			Reason: "KICKED_BY_APP", Detail: reason})
	}
	return nil
}

// kick ends one session at the server's will: the client gets session
// closed with code and reason, leaves the socket (closed when it was its
// last session), and its will is not sent.
func (h *Hub) kick(s *session, code int, reason, detail, why string) {
	s.push(&wire.GenericCommand{Cmd: wire.CommandType_session.Enum(), Op: wire.OpType_closed.Enum(),
		SessionMessage: &wire.SessionCommand{Code: proto.Int32(int32(code)), Reason: proto.String(reason), Detail: proto.String(detail)}})
	s.c.removeSession(s)
	h.endSession(s, why, false)
	if s.c.sessionCount() == 0 {
		s.c.closeWith(websocket.StatusCode(code), reason, closeShutdown)
	}
}

package hub

import (
	"context"
	"sort"

	realtime "github.com/leanhub/realtime"
)

// SendOptions tune Hub.Send.
type SendOptions struct {
	// Transient delivers to online members only and stores nothing.
	Transient bool
	// System skips the membership check, for messages sent by the app as a
	// service account that is not a member.
	System bool
	// SkipHooks sends without running the MessageReceived hooks.
	SkipHooks bool
}

// Send stores a message from the Go side (as any client id, e.g. a system
// account) and delivers it like one sent by a client: m.ConvID, m.From and
// m.Data (a plain string or a typed-message body such as
// typedmsg.NewText("hi").Encode()) are required. It returns the stored
// message with its ID and Timestamp.
func (h *Hub) Send(ctx context.Context, m *realtime.Message, opts *SendOptions) (*realtime.Message, error) {
	var o SendOptions
	if opts != nil {
		o = *opts
	}
	if m == nil || m.ConvID == "" || m.From == "" {
		return nil, realtime.ErrInvalidMessage.WithDetail("ConvID and From are required")
	}
	if len(m.Data)+len(m.Binary) > h.cfg.Limits.MaxMessageSize {
		return nil, realtime.ErrMessageTooLarge
	}
	conv, err := h.conversation(ctx, m.ConvID)
	if err != nil {
		return nil, err
	}
	if !o.System && !h.isMember(conv, m.From) {
		return nil, realtime.ErrInvalidTarget
	}
	msg := *m
	msg.Transient = o.Transient
	ev := &realtime.MessageEvent{Conversation: conv, Message: &msg, To: h.recipients(conv, m.From)}
	if !o.SkipHooks {
		if _, err := h.messageReceived(ctx, ev); err != nil {
			return nil, err
		}
	}
	if msg.Transient {
		msg.ID = newMessageID()
		msg.Timestamp = h.nowMs()
		h.deliver(nil, &msg, append(ev.To, m.From))
		return &msg, nil
	}
	if o.System && !conv.Transient && !conv.HasMember(m.From) {
		// The store checks membership; a system sender that is not a member
		// goes through a transient-like path: store as the conversation's
		// creator is not right either, so refuse clearly.
		return nil, realtime.ErrInvalidTarget.WithDetail("system senders must be members to store messages; add them first or send transient")
	}
	results, err := h.store.AppendMessages(ctx, []*realtime.Message{&msg})
	if err == nil && len(results) == 1 {
		err = results[0].Err
	}
	if err != nil {
		return nil, err
	}
	stored := results[0].Message
	if !results[0].Duplicate {
		h.deliver(nil, stored, append(ev.To, m.From))
		h.afterStored(ev, stored, ev.To)
	}
	return stored, nil
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
	members, err := h.store.Members(ctx, convID)
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

// Store returns the store the hub serves.
func (h *Hub) Store() realtime.Store { return h.store }

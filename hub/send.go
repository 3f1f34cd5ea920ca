package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"time"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/cluster"
)

// sendRequest is a message some client (or the application) sends.
type sendRequest struct {
	// from is the sending session; nil for the Go API and REST. The
	// sender's other sessions get the message; from does not.
	from      *session
	msg       *realtime.Message // ConvID, From, body, ClientMsgID, mentions, Receipt, Transient, System
	pushData  json.RawMessage
	will      bool
	skipHooks bool
	sourceIP  string
	// done is called once with the stored message (or the passing one,
	// for transient and will messages) or the refusal.
	done func(m *realtime.Message, err error)
}

// send is the one path of every message into a conversation: it checks
// the message, runs the MessageReceived hooks in the conversation's lane
// and hands it to the appender (or, transient, delivers it at once; will,
// keeps it). r.done is called exactly once.
func (e *engine) send(r *sendRequest) {
	h := e.h
	m := r.msg
	if err := h.checkBody(m.Data, m.Binary, m.MentionPids); err != nil {
		r.done(nil, err)
		return
	}
	if len(r.pushData) > 0 {
		if len(r.pushData) > h.cfg.Limits.MaxPushDataSize {
			r.done(nil, realtime.ErrInvalidMessage.WithDetail("pushData over %d bytes", h.cfg.Limits.MaxPushDataSize))
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(r.pushData, &obj) != nil || obj == nil {
			r.done(nil, realtime.ErrInvalidMessage.WithDetail("pushData must be a JSON object"))
			return
		}
	}
	err := e.do(m.ConvID, func(c *convEntry, s *convSnap, err error) {
		if err != nil {
			switch {
			case errors.Is(err, realtime.ErrConvNotFound):
				err = realtime.ErrInvalidTarget.WithDetail("no conversation %s", m.ConvID)
			}
			r.done(nil, err)
			return
		}
		e.sendInLane(c, s, r)
	})
	if err != nil {
		r.done(nil, err)
	}
}

// sendInLane continues send in the conversation's lane.
func (e *engine) sendInLane(c *convEntry, s *convSnap, r *sendRequest) {
	h := e.h
	m := r.msg
	conv := s.conv
	if !m.System && !h.isMember(s, m.From) {
		r.done(nil, realtime.ErrInvalidTarget.WithDetail("%s is not a member of the conversation", m.From))
		return
	}
	if !m.System && conv.SilencedAt(m.From, h.now()) {
		if conv.Silenced[m.From].IsZero() {
			r.done(nil, realtime.ErrSilenced.WithDetail("%s is silenced in this conversation", m.From))
		} else {
			r.done(nil, realtime.ErrConvTempBlacklisted.WithDetail("%s is silenced in this conversation until %s", m.From, isoTime(conv.Silenced[m.From])))
		}
		return
	}
	for _, p := range m.MentionPids {
		if !h.isMember(s, p) {
			r.done(nil, realtime.ErrInvalidMessage.WithDetail("mentioned client %q is not a member", p))
			return
		}
	}
	if r.will && (conv.Transient || m.Transient) {
		r.done(nil, realtime.ErrInvalidMessage.WithDetail("will messages are not allowed in transient conversations or as transient messages"))
		return
	}
	to := h.recipients(s, m.From)
	switch {
	case m.To != nil && !conv.System:
		r.done(nil, realtime.ErrInvalidMessage.WithDetail("messages addressed to some members are for service conversations"))
		return
	case m.To != nil:
		// The application writes to some subscribers only.
		to = to[:0:0]
		for _, id := range dedupSorted(m.To) {
			if s.isMember(id) && id != m.From {
				to = append(to, id)
			}
		}
	case conv.System && !m.System:
		// A subscriber's message goes to the service (the application's
		// hooks), not to the other subscribers.
		m.To = []string{}
		to = nil
	}
	ev := &realtime.MessageEvent{
		Conversation: conv,
		Message:      m,
		To:           to,
		PushData:     r.pushData,
		SourceIP:     r.sourceIP,
		Will:         r.will,
	}
	var rewrite *rewriteInfo
	hooked := ev.To
	if !r.skipHooks {
		// Will messages meet the hooks too (the keyword filter): their
		// body is what gets delivered later.
		ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
		var err error
		rewrite, err = h.messageReceived(ctx, ev)
		cancel()
		if err != nil {
			r.done(nil, err)
			return
		}
	}
	if m.To == nil && !sameSlice(hooked, ev.To) {
		// A hook chose the recipients: the message keeps them, so that
		// every node (and the store's announcement) delivers it to them
		// only.
		m.To = dedupSorted(ev.To)
	}
	switch {
	case r.will:
		h.setWill(r, m)
	case m.Transient:
		// Never stored, delivered to whoever is online now, still acked.
		m.ID = newMessageID()
		m.Timestamp = h.nowMs()
		h.deliverLive(r.from, m, ev.To, conv.Transient)
		r.done(m, nil)
	default:
		c.inflight.Add(1)
		e.appendq <- &appendJob{entry: c, req: r, ev: ev, rewrite: rewrite}
	}
}

// appendJob is a checked message waiting for the store.
type appendJob struct {
	entry   *convEntry
	req     *sendRequest
	ev      *realtime.MessageEvent // the hooks' view: recipients, pushData
	rewrite *rewriteInfo
}

// appendBatch is what one AppendMessages call did.
type appendBatch struct {
	jobs    []*appendJob
	results []realtime.AppendResult
	err     error
}

// appender writes queued messages to the store, as many as are queued in
// one AppendMessages call (one group-commit transaction), and hands each
// batch, in order, to the dispatcher. There is one appender, so messages
// are stored in the order their lanes handed them over.
func (e *engine) appender() {
	defer close(e.dispatchq)
	var jobs []*appendJob
	for {
		jobs = jobs[:0]
		select {
		case j := <-e.appendq:
			jobs = append(jobs, j)
		case <-e.quit:
			select {
			case j := <-e.appendq:
				jobs = append(jobs, j)
			default:
				return
			}
		}
	drain:
		for len(jobs) < appendBatchMax {
			select {
			case j := <-e.appendq:
				jobs = append(jobs, j)
			default:
				break drain
			}
		}
		msgs := make([]*realtime.Message, len(jobs))
		for i, j := range jobs {
			msgs[i] = j.req.msg
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		start := time.Now()
		res, err := e.h.store.AppendMessages(ctx, msgs)
		e.h.cfg.Metrics.MessagesStored(len(msgs), time.Since(start))
		cancel()
		if err == nil && len(res) != len(msgs) {
			err = errShortAppend
		}
		e.dispatchq <- &appendBatch{jobs: slices.Clone(jobs), results: res, err: err}
	}
}

var errShortAppend = errors.New("store returned fewer append results than messages")

// dispatcher delivers stored messages, acknowledges them to their
// senders and schedules what follows (pushes, MessageSent hooks), batch by
// batch in the order they were stored. Deliveries are queued before the
// ack: once a sender hears back, a recipient logging in gets the message
// from the unread sync only, not also as a live push.
func (e *engine) dispatcher() {
	h := e.h
	for b := range e.dispatchq {
		for i, j := range b.jobs {
			r := j.req
			err := b.err
			var res realtime.AppendResult
			if err == nil {
				res = b.results[i]
				err = res.Err
			}
			if err != nil {
				j.entry.inflight.Add(-1)
				if realtime.AsError(err) == realtime.ErrInternal {
					if h.isClosing() {
						// Cut by the shutdown: the sender is told, the
						// SDK resends after reconnecting.
						h.log.Warn("message not stored: shutting down", "conv", r.msg.ConvID, "client", r.msg.From, "err", err)
					} else {
						h.log.Error("store a message", "conv", r.msg.ConvID, "client", r.msg.From, "err", err)
					}
				}
				r.done(nil, err)
				continue
			}
			stored := res.Message
			if res.Duplicate {
				// A retried send: delivered the first time.
				j.entry.inflight.Add(-1)
				r.done(stored, nil)
				continue
			}
			j.entry.noteStored(stored)
			offline := h.deliverLocal(r.from, stored, j.ev.To, h.wantsAfter(j.ev.Conversation))
			if h.cl != nil {
				h.cl.publishMessage(cluster.KindMessage, stored, j.ev.To, j.ev.Conversation.Transient)
			}
			r.done(stored, nil)
			if j.rewrite != nil {
				// A hook changed the body: the sender learns it through
				// MESSAGE_UPDATE with the reason, on all its devices.
				h.notifyRewrite(stored, j.rewrite)
			}
			j.entry.inflight.Add(-1)
			h.afterStored(j.ev, stored, j.ev.To, offline)
		}
	}
}

// newMessageID makes an id for messages that are never stored (transient,
// will): the same shape as stored ids.
func newMessageID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// checkBody applies the size, mention and typed-message limits every
// message body and edit meets.
func (h *Hub) checkBody(data string, binary []byte, mentions []string) error {
	if len(data)+len(binary) > h.cfg.Limits.MaxMessageSize {
		return realtime.ErrMessageTooLarge.WithDetail("message body over %d bytes", h.cfg.Limits.MaxMessageSize)
	}
	if len(mentions) > h.cfg.Limits.MaxMentions {
		return realtime.ErrInvalidMessage.WithDetail("at most %d mentioned clients", h.cfg.Limits.MaxMentions)
	}
	for _, p := range mentions {
		if !validClientID(p) {
			return realtime.ErrInvalidMessage.WithDetail("invalid mentioned client id %q", p)
		}
	}
	if h.cfg.MessageTypes != nil && binary == nil {
		return h.cfg.MessageTypes.Validate(data)
	}
	return nil
}

// isMember reports whether clientID may send to a conversation: a member,
// or for a chat room, a client that joined it.
func (h *Hub) isMember(s *convSnap, clientID string) bool {
	if s.conv.Transient {
		return h.rooms.has(s.conv.ID, clientID)
	}
	return s.isMember(clientID)
}

// recipients are the members a message from `from` goes to.
func (h *Hub) recipients(s *convSnap, from string) []string {
	if s.conv.Transient {
		return without(h.rooms.list(s.conv.ID), from)
	}
	return without(s.conv.Members, from)
}

// sameSlice reports whether a and b are the same slice (not merely equal).
func sameSlice(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

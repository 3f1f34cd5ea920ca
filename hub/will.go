package hub

import (
	"context"
	"sync"

	realtime "github.com/leanhub/realtime"
)

// Will messages: one per client, kept in the store, delivered (not stored)
// to the conversation's online members when the client's last session
// drops without a logout.

// setWill keeps a will message for the client, replacing any earlier one.
// It runs in the conversation's lane, after the hooks.
func (h *Hub) setWill(r *sendRequest, msg *realtime.Message) {
	msg.ID = newMessageID()
	msg.Timestamp = h.nowMs()
	h.noWill.forget(msg.From)
	ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
	defer cancel()
	if err := h.store.SetWill(ctx, realtime.Will{ClientID: msg.From, Message: *msg, SetAt: h.now()}); err != nil {
		r.done(nil, err)
		return
	}
	// Again after the write: a drop racing with this send may have marked
	// the client will-less in between.
	h.noWill.forget(msg.From)
	r.done(msg, nil)
}

// sendWill delivers a client's will message to its conversation's online
// members.
func (h *Hub) sendWill(clientID string) {
	if h.noWill.known(clientID) {
		return
	}
	// Not h.ctx: a socket that drops while the hub shuts down still sends
	// its will.
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	w, err := h.store.TakeWill(ctx, clientID)
	if err != nil {
		h.log.Error("take will", "client", clientID, "err", err)
		return
	}
	h.noWill.remember(clientID)
	if w == nil {
		return
	}
	m := w.Message
	m.From = clientID
	_ = h.eng.do(m.ConvID, func(c *convEntry, s *convSnap, err error) {
		if err != nil || !s.isMember(clientID) {
			return
		}
		m.ID = newMessageID()
		m.Timestamp = h.nowMs()
		h.deliverLive(nil, &m, without(s.conv.Members, clientID), false)
	})
}

// clientSet is a bounded set of client ids (used to remember clients known
// to have no will message). When full it starts over: forgetting only
// costs one store read per client.
type clientSet struct {
	mu  sync.Mutex
	m   map[string]struct{}
	max int
}

func (c *clientSet) known(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[id]
	return ok
}

func (c *clientSet) remember(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[string]struct{})
	}
	c.m[id] = struct{}{}
}

func (c *clientSet) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

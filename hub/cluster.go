package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/cluster"
	"github.com/leanhub/realtime/internal/wire"
)

// clusterNode is a hub's part in a deployment of several nodes (Config.Broker).
//
// What one node does that others must hear goes out as an event through
// the broker (publishMessage, publishPush and the rest queue it; the
// publisher goroutine hands queued events to Broker.Publish in batches).
// What other nodes publish comes in through Receive into a bounded queue
// that the receiver goroutine applies in order: messages and pushes are
// delivered to this node's sessions, through the conversation's lane when
// they need its members, conversation changes drop the cached snapshot,
// kicks and revocations apply to this node's sessions and tokens.
//
// Presence: every session this node opens or closes is written to the
// PresenceStore (batched by the presence goroutine) and then published,
// so every node keeps a map of the sessions on the others (remote). It
// answers "is this client online" (client.ping, pushes to offline
// clients, will messages) and finds <clientId, tag> conflicts across
// nodes. The node renews its lease in the store; a node whose lease ends
// (it died) is reaped by a survivor, which sends its clients' will
// messages and tells the others.
//
// A node that may have missed events (the broker reconnected, or the
// receive queue overflowed) resynchronizes: it drops its conversation
// caches, reloads presence from the store and closes its sockets, whose
// SDKs reconnect and fetch what they missed.
type clusterNode struct {
	h     *Hub
	b     Broker
	ps    realtime.PresenceStore
	node  string
	lease time.Duration
	// fedByStore: the broker gets stored messages, conversation changes
	// and revocations from the store's announcements, so the hub does not
	// publish them.
	fedByStore bool

	out     chan BrokerEvent
	flushed chan chan struct{} // flush requests to the publisher
	in      chan inbound
	// overflow is set when Receive found the queue full: the receiver
	// resynchronizes.
	overflow atomic.Bool

	droppedOut, droppedIn atomic.Int64
	subscriptions         atomic.Int32
	// ready is closed once the broker first subscribed and presence was
	// loaded: until then the node would miss what others publish, so
	// logins wait for it.
	ready chan struct{}

	nextSession atomic.Uint64
	remote      *remotePresence

	pmu     sync.Mutex
	adds    map[string]realtime.Presence // written at the next flush
	removes []string
	wake    chan struct{}
	// stopping is closed when the hub shuts down: the publisher flushes
	// and returns.
	stopping chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup // the publisher
	// dead is set by tests that play a node dying (kill -9): it publishes
	// and writes nothing more, and sends no will.
	dead atomic.Bool
}

// inbound is one item of the receive queue: an event, or a mark.
type inbound struct {
	data   []byte
	mark   int // 0: event; markSubscribed; markLost
	reason string
}

const (
	markSubscribed = 1 + iota
	markLost
)

const (
	// clusterQueue bounds the events waiting to be published, and those
	// received and not yet applied.
	clusterQueue = 1 << 16
	// publishBatch is the most events in one Broker.Publish call.
	publishBatch = 512
	// presenceFlush is how often queued session changes are written.
	presenceFlush = 20 * time.Millisecond
	// presenceChunk bounds the sessions in one presence event.
	presenceChunk = 500
	// hintMax is the most recipients a message event lists (so that a
	// node hosting none of them skips it).
	hintMax = 256
	// DefaultNodeLease is the default Config.NodeLease.
	DefaultNodeLease = 15 * time.Second
)

func newCluster(h *Hub, b Broker, ps realtime.PresenceStore) (*clusterNode, error) {
	node := h.cfg.Node
	if node == "" {
		var r [8]byte
		_, _ = rand.Read(r[:])
		node = hex.EncodeToString(r[:])
	}
	c := &clusterNode{
		h: h, b: b, ps: ps, node: node, lease: h.cfg.NodeLease,
		out:      make(chan BrokerEvent, clusterQueue),
		flushed:  make(chan chan struct{}),
		in:       make(chan inbound, clusterQueue),
		remote:   newRemotePresence(),
		adds:     map[string]realtime.Presence{},
		wake:     make(chan struct{}, 1),
		stopping: make(chan struct{}),
		ready:    make(chan struct{}),
	}
	if f, ok := b.(interface{ FedByStore() bool }); ok {
		c.fedByStore = f.FedByStore()
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	// The lease first: sessions of a node without one are reaped.
	if _, err := ps.KeepNode(ctx, node, time.Now().Add(c.lease)); err != nil {
		return nil, err
	}
	return c, nil
}

// start starts the cluster's goroutines (owned by the hub's WaitGroup).
func (c *clusterNode) start() {
	h := c.h
	h.wg.Add(3)
	c.done.Add(1)
	go func() { defer h.wg.Done(); c.runBroker() }()
	go func() { defer h.wg.Done(); c.receiver() }()
	go func() { defer h.wg.Done(); c.presenceLoop() }()
	go func() { defer c.done.Done(); c.publisher() }()
}

// stop is the cluster's part of a shutdown, after the sockets closed and
// the engine finished: the node's presence goes, the others hear it, and
// what is queued is published.
func (c *clusterNode) stop(ctx context.Context) error {
	if c.dead.Load() {
		c.stopOnce.Do(func() { close(c.stopping) })
		c.done.Wait()
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, storeTimeout)
	err := c.ps.DropNode(dctx, c.node)
	cancel()
	c.enqueue(EventNodeDown, &cluster.Event{Kind: cluster.KindNodeDown, Node: c.node})
	c.stopOnce.Do(func() { close(c.stopping) })
	done := make(chan struct{})
	go func() { c.done.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	return err
}

// --- publishing ---

// enqueue encodes ev and queues it for the publisher.
func (c *clusterNode) enqueue(kind EventKind, ev *cluster.Event) {
	if c.dead.Load() || c.fedByStore && kind.StoreAnnounced() {
		return
	}
	data, err := cluster.Encode(ev)
	if err != nil {
		c.h.log.Error("cluster: encode event", "kind", kind, "err", err)
		return
	}
	select {
	case c.out <- BrokerEvent{Kind: kind, Data: data}:
	default:
		if c.droppedOut.Add(1)%1000 == 1 {
			c.h.log.Error("cluster: publish queue full: events dropped (the broker is too slow or down)",
				"dropped", c.droppedOut.Load())
		}
	}
}

// publisher hands queued events to the broker, as many as are queued at
// once. On shutdown it publishes what is left and returns.
func (c *clusterNode) publisher() {
	batch := make([]BrokerEvent, 0, publishBatch)
	publish := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		start := time.Now()
		err := c.b.Publish(ctx, batch)
		c.h.cfg.Metrics.BrokerPublished(len(batch), time.Since(start), err)
		if err != nil {
			c.h.log.Error("cluster: publish", "events", len(batch), "err", err)
		}
		cancel()
		clear(batch)
		batch = batch[:0]
	}
	for {
		select {
		case ev := <-c.out:
			batch = append(batch, ev)
		drain:
			for len(batch) < publishBatch {
				select {
				case ev := <-c.out:
					batch = append(batch, ev)
				default:
					break drain
				}
			}
			publish()
		case ack := <-c.flushed:
			for len(c.out) > 0 && len(batch) < publishBatch {
				batch = append(batch, <-c.out)
			}
			publish()
			close(ack)
		case <-c.stopping:
			for {
				for len(c.out) > 0 && len(batch) < publishBatch {
					batch = append(batch, <-c.out)
				}
				if len(batch) == 0 {
					return
				}
				publish()
			}
		}
	}
}

// publishMessage tells the other nodes of a message (stored or live).
func (c *clusterNode) publishMessage(kind cluster.Kind, m *realtime.Message, to []string, room bool) {
	ek := EventMessage
	if kind == cluster.KindLive {
		ek = EventLive
	}
	if c.fedByStore && ek.StoreAnnounced() {
		return
	}
	ev := &cluster.Event{Kind: kind, Conv: m.ConvID, Room: room, Msg: cluster.FromMessage(m)}
	if len(to) < hintMax && !room {
		ev.Hint = append(append(make([]string, 0, len(to)+1), to...), m.From)
	}
	c.enqueue(ek, ev)
}

// publishPush tells the other nodes of an encoded push.
func (c *clusterNode) publishPush(raw []byte, a audience) {
	p := &cluster.Push{Frame: raw, Clients: a.clients, Skip: a.skip, GroupOnly: a.groupOnly}
	ev := &cluster.Event{Kind: cluster.KindPush, Push: p}
	if a.conv != nil {
		p.Clients, p.Members, ev.Conv = nil, true, a.conv.conv.ID
	}
	c.enqueue(EventPush, ev)
}

// publishChanged tells the other nodes a conversation changed.
func (c *clusterNode) publishChanged(convID string) {
	c.enqueue(EventConversation, &cluster.Event{Kind: cluster.KindConv, Conv: convID})
}

// publishRevoke tells the other nodes of a revocation.
func (c *clusterNode) publishRevoke(client, device string, at int64) {
	c.enqueue(EventRevocation, &cluster.Event{Kind: cluster.KindRevoke,
		Revoke: &cluster.Revoke{Client: client, Device: device, At: at}})
}

// publishCursors tells the other nodes of cursor moves not yet written.
func (c *clusterNode) publishCursors(cs []realtime.Cursor) {
	for len(cs) > 0 {
		n := min(len(cs), presenceChunk)
		ev := &cluster.Event{Kind: cluster.KindCursors, Cursors: make([]cluster.Cursor, n)}
		for i, m := range cs[:n] {
			ev.Cursors[i] = cluster.Cursor{Conv: m.ConvID, Client: m.ClientID, Delivered: m.DeliveredAt,
				ReadSeq: m.ReadSeq, ReadAt: m.ReadAt, ReadMID: m.ReadMessageID}
		}
		cs = cs[n:]
		c.enqueue(EventCursors, ev)
	}
}

// publishKick ends a client's sessions on the other nodes.
func (c *clusterNode) publishKick(k *cluster.Kick) {
	c.enqueue(EventKick, &cluster.Event{Kind: cluster.KindKick, Kick: k})
}

// --- receiving ---

// Subscribed implements BrokerReceiver.
func (c *clusterNode) Subscribed() { c.put(inbound{mark: markSubscribed}) }

// Receive implements BrokerReceiver.
func (c *clusterNode) Receive(data []byte) { c.put(inbound{data: data}) }

// Lost implements BrokerReceiver.
func (c *clusterNode) Lost(reason string) { c.put(inbound{mark: markLost, reason: reason}) }

func (c *clusterNode) put(it inbound) {
	select {
	case c.in <- it:
	default:
		c.droppedIn.Add(1)
		c.overflow.Store(true)
	}
}

// runBroker runs the broker until the hub shuts down, again after a pause
// when it fails.
func (c *clusterNode) runBroker() {
	h := c.h
	for {
		err := c.b.Run(h.ctx, c)
		if h.ctx.Err() != nil {
			return
		}
		h.log.Error("cluster: broker stopped; restarting", "err", err)
		select {
		case <-h.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// receiver applies received events in order.
func (c *clusterNode) receiver() {
	h := c.h
	for {
		var it inbound
		select {
		case <-h.ctx.Done():
			return
		case it = <-c.in:
		}
		if c.overflow.Swap(false) {
			c.resync("receive queue overflowed")
		}
		switch it.mark {
		case markSubscribed:
			if c.subscriptions.Add(1) == 1 {
				c.loadPresence()
				close(c.ready)
			} else {
				c.resync("broker reconnected")
			}
		case markLost:
			c.resync(it.reason)
		default:
			ev, err := cluster.Decode(it.data)
			if err != nil {
				h.log.Warn("cluster: undecodable event", "err", err)
				continue
			}
			c.apply(ev)
		}
	}
}

// apply applies one event of another node.
func (c *clusterNode) apply(ev *cluster.Event) {
	h := c.h
	switch ev.Kind {
	case cluster.KindMessage, cluster.KindLive:
		h.remoteMessage(ev)
	case cluster.KindPush:
		h.remotePush(ev)
	case cluster.KindConv:
		h.eng.invalidate(ev.Conv)
	case cluster.KindKick:
		h.remoteKick(ev.Kick)
	case cluster.KindRevoke:
		h.revoked.add(ev.Revoke.Client, ev.Revoke.Device, ev.Revoke.At)
	case cluster.KindPresence:
		if ev.Node == c.node {
			return
		}
		c.remote.remove(ev.Node, ev.Gone)
		c.remote.add(ev.Node, ev.Sessions)
		for _, s := range ev.Sessions {
			h.resolveConflicts(ev.Node, s)
		}
	case cluster.KindNodeDown:
		if ev.Node != c.node {
			c.remote.dropNode(ev.Node)
		}
	case cluster.KindCursors:
		cs := make([]realtime.Cursor, len(ev.Cursors))
		for i, m := range ev.Cursors {
			cs[i] = realtime.Cursor{ConvID: m.Conv, ClientID: m.Client, DeliveredAt: m.Delivered,
				ReadSeq: m.ReadSeq, ReadAt: m.ReadAt, ReadMessageID: m.ReadMID}
		}
		h.eng.cursors.addRemote(cs)
	}
}

// resync is what a node does when it may have missed events.
func (c *clusterNode) resync(reason string) {
	h := c.h
	h.cfg.Metrics.BrokerResync(reason)
	h.log.Warn("cluster: events may have been missed; resynchronizing (caches dropped, sockets reconnect)", "reason", reason)
	h.eng.invalidateAll()
	c.loadPresence()
	h.mu.RLock()
	conns := make([]*conn, 0, len(h.conns))
	for cn := range h.conns {
		conns = append(conns, cn)
	}
	h.mu.RUnlock()
	for _, cn := range conns {
		cn.sendCmd(&wire.GenericCommand{Cmd: wire.CommandType_goaway.Enum(), Service: proto.Int32(2), ServerTs: proto.Int64(h.nowMs())})
		cn.closeWith(websocket.StatusServiceRestart, "resynchronizing", closeShutdown)
	}
}

// loadPresence replaces what the node knows of other nodes' sessions
// with the store's list.
func (c *clusterNode) loadPresence() {
	ctx, cancel := context.WithTimeout(c.h.ctx, storeTimeout)
	defer cancel()
	all, err := c.ps.ListPresence(ctx)
	if err != nil {
		c.h.log.Error("cluster: load presence", "err", err)
		return
	}
	c.remote.replace(c.node, all)
}

// readyTimeout bounds how long a login waits for a node that has not
// joined the others yet.
const readyTimeout = 10 * time.Second

// waitReady waits until the node receives the other nodes' events.
func (c *clusterNode) waitReady() error {
	select {
	case <-c.ready:
		return nil
	default:
	}
	t := time.NewTimer(readyTimeout)
	defer t.Stop()
	select {
	case <-c.ready:
		return nil
	case <-t.C:
		return realtime.ErrAppNotAvailable.WithDetail("this node has not joined the others yet (broker not subscribed)")
	case <-c.h.ctx.Done():
		return errShutDown
	}
}

// Ready reports whether the hub serves: for several nodes, once it
// receives the other nodes' events; false from the start of Drain or
// Shutdown on. A readiness probe serves it.
func (h *Hub) Ready() bool {
	if h.draining.Load() || h.isClosing() {
		return false
	}
	if h.cl == nil {
		return true
	}
	select {
	case <-h.cl.ready:
		return true
	default:
		return false
	}
}

// --- presence ---

// opened registers a new session of this node.
func (c *clusterNode) opened(s *session) {
	s.sid = strconv.FormatUint(c.nextSession.Add(1), 36)
	c.pmu.Lock()
	c.adds[s.sid] = realtime.Presence{Session: s.sid, ClientID: s.clientID, Tag: s.tag, DeviceID: s.deviceID, Since: s.openedAt}
	c.pmu.Unlock()
	c.poke()
}

// closed unregisters a session of this node.
func (c *clusterNode) closed(s *session) {
	c.pmu.Lock()
	if _, ok := c.adds[s.sid]; ok {
		delete(c.adds, s.sid) // never written
	} else {
		c.removes = append(c.removes, s.sid)
	}
	c.pmu.Unlock()
	c.poke()
}

func (c *clusterNode) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// presenceLoop writes session changes (at most every presenceFlush),
// renews the node's lease and reaps dead nodes.
func (c *clusterNode) presenceLoop() {
	h := c.h
	renew := time.NewTicker(c.lease / 3)
	defer renew.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-c.wake:
			c.flushPresence()
			select {
			case <-h.ctx.Done():
				return
			case <-time.After(presenceFlush):
			}
		case <-renew.C:
			if c.dead.Load() {
				continue
			}
			c.renew()
			c.reap()
			h.eng.cursors.forgetRemote()
		}
	}
}

// flushPresence writes and publishes the queued session changes. On a
// store error they stay queued for the next flush.
func (c *clusterNode) flushPresence() {
	if c.dead.Load() {
		return
	}
	c.pmu.Lock()
	if len(c.adds) == 0 && len(c.removes) == 0 {
		c.pmu.Unlock()
		return
	}
	adds := make([]realtime.Presence, 0, len(c.adds))
	for _, p := range c.adds {
		adds = append(adds, p)
	}
	removes := c.removes
	c.adds, c.removes = map[string]realtime.Presence{}, nil
	c.pmu.Unlock()
	ctx, cancel := context.WithTimeout(c.h.ctx, storeTimeout)
	err := c.ps.UpdatePresence(ctx, c.node, adds, removes)
	cancel()
	if err != nil {
		if c.h.ctx.Err() != nil {
			return // shutting down: DropNode removes them all
		}
		c.h.log.Error("cluster: write presence", "err", err)
		c.pmu.Lock()
		for _, p := range adds {
			if _, ok := c.adds[p.Session]; !ok {
				c.adds[p.Session] = p
			}
		}
		c.removes = append(removes, c.removes...)
		c.pmu.Unlock()
		c.poke()
		return
	}
	c.publishPresence(adds, removes)
}

func (c *clusterNode) publishPresence(adds []realtime.Presence, removes []string) {
	for len(adds) > 0 || len(removes) > 0 {
		ev := &cluster.Event{Kind: cluster.KindPresence, Node: c.node}
		n := min(len(removes), presenceChunk)
		ev.Gone, removes = removes[:n], removes[n:]
		n = min(len(adds), presenceChunk-len(ev.Gone))
		for _, p := range adds[:n] {
			ev.Sessions = append(ev.Sessions, cluster.Session{ID: p.Session, Client: p.ClientID, Tag: p.Tag,
				Device: p.DeviceID, Opened: p.Since.UnixMicro()})
		}
		adds = adds[n:]
		c.enqueue(EventPresence, ev)
	}
}

// renew extends the node's lease. A node whose lease was gone was
// declared dead by another (it could not renew in time): its sessions
// were reaped and their will messages sent, so it writes and publishes
// them again.
func (c *clusterNode) renew() {
	ctx, cancel := context.WithTimeout(c.h.ctx, storeTimeout)
	defer cancel()
	existed, err := c.ps.KeepNode(ctx, c.node, time.Now().Add(c.lease))
	if err != nil {
		c.h.log.Error("cluster: renew the node's lease", "err", err)
		return
	}
	if existed {
		return
	}
	c.h.log.Warn("cluster: this node's lease had run out; presence written again", "node", c.node)
	var all []realtime.Presence
	c.h.reg.mu.RLock()
	for _, set := range c.h.reg.clients {
		for _, s := range set {
			all = append(all, realtime.Presence{Session: s.sid, ClientID: s.clientID, Tag: s.tag, DeviceID: s.deviceID, Since: s.openedAt})
		}
	}
	c.h.reg.mu.RUnlock()
	if err := c.ps.UpdatePresence(ctx, c.node, all, nil); err != nil {
		c.h.log.Error("cluster: write presence", "err", err)
		return
	}
	c.publishPresence(all, nil)
}

// reap removes dead nodes: their clients are offline now, and those not
// online anywhere else get their will messages sent (the store hands each
// dead session to one reaper, and each will to one taker).
func (c *clusterNode) reap() {
	h := c.h
	ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
	nodes, gone, err := c.ps.ReapNodes(ctx, time.Now())
	cancel()
	if err != nil {
		h.log.Error("cluster: reap dead nodes", "err", err)
		return
	}
	if len(nodes) == 0 && len(gone) == 0 {
		return
	}
	dead := map[string]bool{}
	for _, n := range nodes {
		dead[n] = true
	}
	clients := map[string]bool{}
	for _, p := range gone {
		dead[p.Node] = true
		clients[p.ClientID] = true
	}
	for n := range dead {
		if n == c.node {
			continue // our own lease ran out: renew writes it again
		}
		h.log.Warn("cluster: node is gone (its lease ran out)", "node", n)
		c.remote.dropNode(n)
		c.enqueue(EventNodeDown, &cluster.Event{Kind: cluster.KindNodeDown, Node: n})
	}
	for id := range clients {
		if !h.online(id) {
			h.tasks.goTask(func() { h.sendWill(id) })
		}
	}
}

// --- remote presence ---

// remotePresence is what a node knows of the sessions on other nodes.
type remotePresence struct {
	mu      sync.RWMutex
	clients map[string][]remoteSession
}

type remoteSession struct {
	node, id, tag, device string
	opened                int64 // Unix µs
}

func newRemotePresence() *remotePresence {
	return &remotePresence{clients: map[string][]remoteSession{}}
}

func (r *remotePresence) add(node string, ss []cluster.Session) {
	if len(ss) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range ss {
		set := r.clients[s.Client]
		i := indexSession(set, node, s.ID)
		rs := remoteSession{node: node, id: s.ID, tag: s.Tag, device: s.Device, opened: s.Opened}
		if i >= 0 {
			set[i] = rs
		} else {
			r.clients[s.Client] = append(set, rs)
		}
	}
}

func indexSession(set []remoteSession, node, id string) int {
	for i, s := range set {
		if s.node == node && s.id == id {
			return i
		}
	}
	return -1
}

// remove removes sessions of a node. The events do not say whose they
// are, so it looks them up.
func (r *remotePresence) remove(node string, ids []string) {
	if len(ids) == 0 {
		return
	}
	gone := make(map[string]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.filterLocked(func(s remoteSession) bool { return s.node == node && gone[s.id] })
}

// filterLocked removes the sessions drop selects.
func (r *remotePresence) filterLocked(drop func(remoteSession) bool) {
	for client, set := range r.clients {
		out := set[:0]
		for _, s := range set {
			if !drop(s) {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			delete(r.clients, client)
		} else {
			clear(set[len(out):])
			r.clients[client] = out
		}
	}
}

func (r *remotePresence) dropNode(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.filterLocked(func(s remoteSession) bool { return s.node == node })
}

// replace sets the sessions to the store's list, leaving out self's.
func (r *remotePresence) replace(self string, all []realtime.Presence) {
	m := map[string][]remoteSession{}
	for _, p := range all {
		if p.Node == self {
			continue
		}
		m[p.ClientID] = append(m[p.ClientID], remoteSession{node: p.Node, id: p.Session, tag: p.Tag, device: p.DeviceID, opened: p.Since.UnixMicro()})
	}
	r.mu.Lock()
	r.clients = m
	r.mu.Unlock()
}

func (r *remotePresence) has(client string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.clients[client]) > 0
}

func (r *remotePresence) sessionsOf(client string) []remoteSession {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]remoteSession(nil), r.clients[client]...)
}

// offline returns the clients of ids with no session on other nodes.
func (r *remotePresence) offline(ids []string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := ids[:0:0]
	for _, id := range ids {
		if len(r.clients[id]) == 0 {
			out = append(out, id)
		}
	}
	return out
}

// --- the hub's side ---

// online reports whether a client has a live session on any node.
func (h *Hub) online(clientID string) bool {
	return h.reg.online(clientID) || h.cl != nil && h.cl.remote.has(clientID)
}

// elsewhere reports whether a client has a live session other than
// except, on any node.
func (h *Hub) elsewhere(clientID string, except *session) bool {
	for _, o := range h.reg.sessionsOf(clientID) {
		if o != except {
			return true
		}
	}
	return h.cl != nil && h.cl.remote.has(clientID)
}

// remoteMessage delivers another node's message to this node's sessions
// of its recipients (and of its sender), and notes a stored one as its
// conversation's newest.
func (h *Hub) remoteMessage(ev *cluster.Event) {
	stored := ev.Kind == cluster.KindMessage
	if ev.Msg != nil && ev.Msg.Timestamp > 0 {
		h.cfg.Metrics.BrokerReceived(time.Duration(h.nowMs()-ev.Msg.Timestamp) * time.Millisecond)
	}
	if ev.Room {
		// Chat rooms: the joiners this node hosts, no snapshot needed.
		m := ev.Msg.Message(ev.Conv)
		to := h.rooms.list(ev.Conv)
		if m.To != nil {
			to = intersect(to, m.To)
		}
		h.deliverLocal(nil, m, without(to, m.From), false)
		return
	}
	if ev.Hint != nil && !h.reg.anyOnline(ev.Hint) {
		// Nobody here to deliver to; a cached conversation still learns
		// its newest message.
		if c := h.eng.lookup(ev.Conv); c != nil && stored && ev.Msg != nil {
			m := ev.Msg.Message(ev.Conv)
			c.run(func() { c.noteStored(m) })
		}
		return
	}
	if h.reg.empty() {
		return
	}
	_ = h.eng.do(ev.Conv, func(c *convEntry, s *convSnap, err error) {
		if err != nil {
			return
		}
		var m *realtime.Message
		if ev.Msg != nil {
			m = ev.Msg.Message(ev.Conv)
		} else {
			ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
			m, err = h.store.GetMessage(ctx, ev.Conv, ev.Ref)
			cancel()
			if err != nil {
				h.log.Error("cluster: read an announced message", "conv", ev.Conv, "id", ev.Ref, "err", err)
				return
			}
		}
		if stored {
			c.noteStored(m)
		}
		to := m.To
		if to == nil {
			to = h.recipients(s, m.From)
		} else if s.conv.Transient {
			to = intersect(h.rooms.list(s.conv.ID), to)
		}
		if stored && len(s.recentJoins) > 0 {
			// The snapshot may be newer than the message (it reached this
			// node late): who joined after it does not get it.
			kept := make([]string, 0, len(to))
			for _, id := range to {
				if !s.joinedAfter(id, m.Timestamp) {
					kept = append(kept, id)
				}
			}
			to = kept
		}
		h.deliverLocal(nil, m, without(to, m.From), false)
	})
}

// remotePush delivers another node's push to this node's sessions of its
// audience.
func (h *Hub) remotePush(ev *cluster.Event) {
	p := ev.Push
	if !p.Members {
		h.fanoutRaw(p.Frame, h.localTargets(audience{clients: p.Clients, skip: p.Skip, groupOnly: p.GroupOnly}), nil)
		return
	}
	if p.GroupOnly && len(h.reg.groupReceiptSessions()) == 0 || h.reg.empty() {
		return
	}
	_ = h.eng.do(ev.Conv, func(c *convEntry, s *convSnap, err error) {
		if err == nil {
			h.fanoutRaw(p.Frame, h.localTargets(audience{conv: s, skip: p.Skip, groupOnly: p.GroupOnly}), nil)
		}
	})
}

// remoteKick ends this node's sessions another node asked to end.
func (h *Hub) remoteKick(k *cluster.Kick) {
	for _, s := range h.reg.sessionsOf(k.Client) {
		if k.All || contains(k.Sessions, h.cl.node+"/"+s.sid) {
			h.kick(s, k.Code, k.Reason, k.Detail, "kicked")
		}
	}
}

// resolveConflicts applies the <clientId, tag> rule across nodes when
// another node opened a session: a session here with the same client and
// tag that opened before it yields (the newer login wins, as on one
// node). One of the same device is a stale connection and is closed
// quietly; one of another device is kicked with 4111 and its tokens
// revoked.
func (h *Hub) resolveConflicts(node string, rs cluster.Session) {
	if rs.Tag == "" {
		return
	}
	for _, o := range h.reg.sessionsOf(rs.Client) {
		if o.tag != rs.Tag {
			continue
		}
		mine := o.openedAt.UnixMicro()
		if mine > rs.Opened || mine == rs.Opened && h.cl.node > node {
			continue // ours is newer: the other node yields
		}
		if h.endSessionLocked(o) {
			h.yield(o, o.deviceID != "" && o.deviceID == rs.Device)
		}
	}
}

// endSessionLocked unregisters a session; it reports whether it was
// registered.
func (h *Hub) endSessionLocked(s *session) bool {
	h.reg.mu.Lock()
	defer h.reg.mu.Unlock()
	return h.unregisterLocked(s)
}

func intersect(a, b []string) []string {
	out := a[:0:0]
	for _, x := range a {
		if contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

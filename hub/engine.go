package hub

import (
	"context"
	"errors"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	realtime "github.com/leanhub/realtime"
)

// The engine owns every change to a conversation. Whatever asks for one (a
// websocket command, the Go API, another node) calls the same engine
// operation, which runs the same checks, hooks, store writes, cache
// updates and notifications.
//
// Each conversation the hub has touched recently has a convEntry: its
// state as the store last said (an immutable snapshot, replaced on every
// change), its head (newest seq and timestamp) and its newest messages, and
// a lane: a queue of operations run one at a time, in order, by a
// goroutine that exists while the queue is not empty. Operations of one
// conversation therefore happen in the order they were asked for, and a
// slow hook or store call delays only its own conversation: a socket's read
// loop never waits for one.
//
// Sends do not wait for the store inside the lane: the lane runs the
// checks and hooks and hands the message to the appender, which writes
// whatever is queued as one AppendMessages call (one group-commit
// transaction) and hands the results, in order, to the dispatcher, which
// delivers, acknowledges and schedules pushes. So a conversation keeps many
// messages in flight while each is acknowledged only after it is durable.
//
// Client acks and reads never wait for the store either: cursor moves are
// coalesced in memory (cursors.go) and written in batches.
type engine struct {
	h *Hub

	mu       sync.RWMutex
	convs    map[string]*convEntry
	bytes    int64 // estimated memory of the entries in convs
	maxBytes int64

	queued atomic.Int64 // lane operations queued or running, all conversations

	appendq   chan *appendJob
	dispatchq chan *appendBatch
	cursors   *cursorBuffer

	pipeline sync.WaitGroup // appender, dispatcher, cursor writer
	quit     chan struct{}  // closed when the pipeline must finish and stop
}

const (
	// maxLaneQueue bounds the operations waiting in one conversation's
	// lane; beyond it requests are refused (4116), so one flooded
	// conversation cannot take the hub's memory.
	maxLaneQueue = 4096
	// maxQueuedOps bounds the operations waiting in all lanes.
	maxQueuedOps = 200_000
	// appendQueueSize is how many sends may wait for the appender.
	appendQueueSize = 8192
	// appendBatchMax is the most messages in one AppendMessages call.
	appendBatchMax = 512
	// storeTimeout bounds one store call of the engine.
	storeTimeout = 15 * time.Second
)

var errShutDown = realtime.ErrAppNotAvailable.WithDetail("hub shut down")

var errBusy = realtime.ErrRateLimited.WithDetail("server busy: too many requests in flight for this conversation")

func newEngine(h *Hub) *engine {
	e := &engine{
		h:         h,
		convs:     make(map[string]*convEntry),
		maxBytes:  h.cfg.Limits.ConversationCacheBytes,
		appendq:   make(chan *appendJob, appendQueueSize),
		dispatchq: make(chan *appendBatch, 64),
		quit:      make(chan struct{}),
	}
	e.cursors = newCursorBuffer(e)
	return e
}

// start starts the pipeline goroutines; stop ends them.
func (e *engine) start() {
	e.pipeline.Add(3)
	go func() { defer e.pipeline.Done(); e.appender() }()
	go func() { defer e.pipeline.Done(); e.dispatcher() }()
	go func() { defer e.pipeline.Done(); e.cursors.run() }()
}

// drain waits until no lane has work queued, or ctx ends.
func (e *engine) drain(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for e.queued.Load() > 0 || len(e.appendq) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// stop lets the appender, dispatcher and cursor writer finish what is
// queued, then waits for them (or ctx).
func (e *engine) stop(ctx context.Context) error {
	select {
	case <-e.quit:
	default:
		close(e.quit)
	}
	done := make(chan struct{})
	go func() { e.pipeline.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// convSnap is a conversation as the engine knows it. It is never modified:
// changes replace it.
type convSnap struct {
	conv    *realtime.Conversation // LastMessage is not kept here
	members map[string]struct{}
	// recentJoins are the members who joined within lateWindow of the
	// load, with when (ms): another node's message that arrives after a
	// join it preceded is not theirs (see joinedAfter).
	recentJoins map[string]int64
}

// lateWindow bounds how late another node's message may arrive and still
// be kept from members who joined after it.
const lateWindow = 5 * time.Minute

// joinedAfter reports whether client joined after a message stored at ts.
func (s *convSnap) joinedAfter(client string, ts int64) bool {
	j, ok := s.recentJoins[client]
	return ok && j > ts
}

func newSnap(c *realtime.Conversation) *convSnap {
	cp := *c
	cp.LastMessage = nil
	s := &convSnap{conv: &cp, members: make(map[string]struct{}, len(c.Members))}
	for _, m := range c.Members {
		s.members[m] = struct{}{}
	}
	return s
}

func (s *convSnap) isMember(id string) bool {
	_, ok := s.members[id]
	return ok
}

// head is a conversation's newest stored message.
type head struct {
	seq int64
	ts  int64
	mid string
}

// convEntry is one conversation in the engine: its lane, its snapshot,
// its head and its newest messages.
type convEntry struct {
	id string
	e  *engine

	lane     sync.Mutex // guards queue, running, evicted
	queue    []func()
	running  bool
	evicted  bool
	inflight atomic.Int32 // sends handed to the appender, not yet dispatched

	snap atomic.Pointer[convSnap] // nil until loaded

	mu     sync.Mutex // guards head and recent
	head   head
	recent recentRing

	used atomic.Bool // touched since the last eviction sweep
	size int64       // estimate, set under e.mu
}

// entry returns the entry of a conversation, creating an empty one.
func (e *engine) entry(id string) *convEntry {
	e.mu.RLock()
	c := e.convs[id]
	e.mu.RUnlock()
	if c != nil {
		c.used.Store(true)
		return c
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if c = e.convs[id]; c != nil {
		return c
	}
	c = &convEntry{id: id, e: e, size: entryBaseSize}
	c.used.Store(true)
	e.convs[id] = c
	e.bytes += c.size
	if e.bytes > e.maxBytes {
		e.evictLocked()
	}
	return c
}

// lookup returns the entry of a conversation if the engine has it.
func (e *engine) lookup(id string) *convEntry {
	e.mu.RLock()
	c := e.convs[id]
	e.mu.RUnlock()
	if c != nil {
		c.used.Store(true)
	}
	return c
}

// loaded returns a conversation's snapshot when the engine has one,
// without loading it.
func (e *engine) loaded(id string) (*convEntry, *convSnap) {
	c := e.lookup(id)
	if c == nil {
		return nil, nil
	}
	return c, c.snap.Load()
}

const entryBaseSize = 1024

// entrySize estimates the memory an entry holds.
func entrySize(s *convSnap) int64 {
	if s == nil {
		return entryBaseSize
	}
	n := entryBaseSize + int64(len(s.conv.Name)+len(s.conv.Attrs)+len(s.conv.Creator))
	for _, m := range s.conv.Members {
		n += int64(len(m))*2 + 48 // the slice, the set
	}
	for _, m := range s.conv.Muted {
		n += int64(len(m)) + 16
	}
	return n + recentSize*48
}

// setSnap replaces an entry's snapshot and its size estimate.
func (e *engine) setSnap(c *convEntry, s *convSnap) {
	c.snap.Store(s)
	size := entrySize(s)
	e.mu.Lock()
	if e.convs[c.id] == c {
		e.bytes += size - c.size
	}
	c.size = size
	if e.bytes > e.maxBytes {
		e.evictLocked()
	}
	e.mu.Unlock()
}

// evictLocked drops idle entries until the cache is back under 90% of its
// budget: entries not used since the last sweep go first (a CLOCK
// approximation of least recently used, over Go's random map order). An
// entry with work queued, running or in the send pipeline stays. e.mu is
// held.
func (e *engine) evictLocked() {
	target := e.maxBytes * 9 / 10
	for pass := 0; pass < 2 && e.bytes > target; pass++ {
		for id, c := range e.convs {
			if e.bytes <= target {
				return
			}
			if pass == 0 && c.used.Swap(false) {
				continue
			}
			if !c.tryEvict() {
				continue
			}
			delete(e.convs, id)
			e.bytes -= c.size
		}
	}
}

// tryEvict marks an idle entry evicted; later operations on it go to a
// new entry.
func (c *convEntry) tryEvict() bool {
	c.lane.Lock()
	defer c.lane.Unlock()
	if c.running || len(c.queue) > 0 || c.inflight.Load() > 0 {
		return false
	}
	c.evicted = true
	return true
}

// forget removes an entry (a conversation that turned out not to exist,
// or whose state must be read again).
func (e *engine) forget(c *convEntry) {
	e.mu.Lock()
	if e.convs[c.id] == c {
		delete(e.convs, c.id)
		e.bytes -= c.size
	}
	e.mu.Unlock()
}

// changed replaces an entry's snapshot after a change of the
// conversation's members or attributes, and tells the other nodes.
func (e *engine) changed(c *convEntry, s *convSnap) {
	e.setSnap(c, s)
	if e.h.cl != nil {
		e.h.cl.publishChanged(c.id)
	}
}

// invalidateAll drops every snapshot (a node that may have missed
// changes); heads stay and only move forward when reloaded.
func (e *engine) invalidateAll() {
	e.mu.RLock()
	entries := make([]*convEntry, 0, len(e.convs))
	for _, c := range e.convs {
		entries = append(entries, c)
	}
	e.mu.RUnlock()
	for _, c := range entries {
		c.run(func() { c.snap.Store(nil) })
	}
}

// invalidate drops what the engine knows of a conversation's members and
// attributes; the next operation reads them again. Its head stays.
func (e *engine) invalidate(id string) {
	if c := e.lookup(id); c != nil {
		c.run(func() { c.snap.Store(nil) })
	}
}

// do runs op in the conversation's lane with its snapshot loaded (or the
// load error: ErrConvNotFound for a missing or expired conversation). It
// returns errBusy when the lane is full; op then never runs.
func (e *engine) do(id string, op func(c *convEntry, s *convSnap, err error)) error {
	if !validConvID(id) {
		op(nil, nil, realtime.ErrConvNotFound.WithDetail("malformed conversation id %q", id))
		return nil
	}
	for {
		c := e.entry(id)
		ok, err := c.enqueue(func() {
			s, err := c.load()
			op(c, s, err)
		})
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		// The entry was evicted between lookup and enqueue: retry on
		// the entry that replaces it.
	}
}

// run runs f in the lane without loading anything.
func (c *convEntry) run(f func()) {
	_, _ = c.enqueue(f)
}

// enqueue adds f to the lane and starts the lane's goroutine if it is not
// running. It reports false when the entry was evicted.
func (c *convEntry) enqueue(f func()) (bool, error) {
	e := c.e
	c.lane.Lock()
	if c.evicted {
		c.lane.Unlock()
		return false, nil
	}
	if len(c.queue) >= maxLaneQueue || e.queued.Load() >= maxQueuedOps {
		c.lane.Unlock()
		return true, errBusy
	}
	if e.h.ctx.Err() != nil {
		// Shut down: no goroutine may start any more.
		c.lane.Unlock()
		return true, errShutDown
	}
	e.queued.Add(1)
	c.queue = append(c.queue, f)
	start := !c.running
	c.running = true
	c.lane.Unlock()
	if start {
		e.h.wg.Add(1)
		go c.drainLane()
	}
	return true, nil
}

// drainLane runs the lane's operations until the queue is empty. A
// panicking operation is logged; the lane goes on.
func (c *convEntry) drainLane() {
	defer c.e.h.wg.Done()
	for {
		c.lane.Lock()
		if len(c.queue) == 0 {
			c.running = false
			c.queue = nil // do not keep a burst's backing array
			c.lane.Unlock()
			return
		}
		f := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.lane.Unlock()
		c.runOne(f)
		c.e.queued.Add(-1)
	}
}

func (c *convEntry) runOne(f func()) {
	defer func() {
		if r := recover(); r != nil {
			c.e.h.log.Error("panic in a conversation operation", "conv", c.id, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	f()
}

// load returns the entry's snapshot, reading the conversation from the
// store when the entry has none. It runs in the lane.
func (c *convEntry) load() (*convSnap, error) {
	if s := c.snap.Load(); s != nil {
		if s.conv.Temporary && !s.conv.ExpiresAt.IsZero() && c.e.h.now().After(s.conv.ExpiresAt) {
			return s, realtime.ErrTempConvExpired
		}
		return s, nil
	}
	ctx, cancel := context.WithTimeout(c.e.h.ctx, storeTimeout)
	defer cancel()
	conv, err := c.e.h.store.GetConversation(ctx, c.id)
	if err != nil {
		if errors.Is(err, realtime.ErrConvNotFound) {
			c.e.forgetIfIdle(c)
		}
		return nil, err
	}
	s := newSnap(conv)
	cut := c.e.h.nowMs() - lateWindow.Milliseconds()
	for id, at := range conv.JoinedAt {
		if at > cut {
			if s.recentJoins == nil {
				s.recentJoins = map[string]int64{}
			}
			s.recentJoins[id] = at
		}
	}
	s.conv.JoinedAt = nil // kept in recentJoins only
	c.noteHead(conv)
	c.e.setSnap(c, s)
	return s, nil
}

// forgetIfIdle removes an entry whose conversation does not exist, unless
// more work is queued on it (which will find out the same).
func (e *engine) forgetIfIdle(c *convEntry) {
	c.lane.Lock()
	idle := len(c.queue) == 0 && c.inflight.Load() == 0
	if idle {
		c.evicted = true
	}
	c.lane.Unlock()
	if idle {
		e.forget(c)
	}
}

// noteHead moves the head to a conversation's newest message as the store
// reported it (never backwards).
func (c *convEntry) noteHead(conv *realtime.Conversation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conv.Seq > c.head.seq {
		c.head.seq = conv.Seq
		if m := conv.LastMessage; m != nil {
			c.head.ts, c.head.mid = m.Timestamp, m.ID
		}
	}
}

// noteStored records a stored message: the head moves, and the message
// joins the recent ones.
func (c *convEntry) noteStored(m *realtime.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.Seq > c.head.seq {
		c.head = head{seq: m.Seq, ts: m.Timestamp, mid: m.ID}
	}
	c.recent.add(recentMsg{seq: m.Seq, ts: m.Timestamp, id: m.ID, from: m.From, receipt: m.Receipt})
}

// currentHead returns the head.
func (c *convEntry) currentHead() head {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.head
}

// validConvID reports whether id has the shape of a conversation id (24
// lowercase hex digits), so that garbage never reaches the cache or the
// store.
func validConvID(id string) bool {
	if len(id) != 24 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// recentSize is how many of a conversation's newest messages the engine
// remembers (for receipts and read cursors without store reads).
const recentSize = 256

// recentMsg is what the engine remembers of a stored message.
type recentMsg struct {
	seq     int64
	ts      int64
	id      string
	from    string
	receipt bool
}

// recentRing holds the newest recentSize messages of a conversation in
// timestamp order.
type recentRing struct {
	buf   []recentMsg
	start int // index of the oldest when full
}

func (r *recentRing) add(m recentMsg) {
	if len(r.buf) > 0 && m.seq <= r.newest().seq {
		return // an older message reported late (another node)
	}
	if len(r.buf) < recentSize {
		r.buf = append(r.buf, m)
		return
	}
	r.buf[r.start] = m
	r.start = (r.start + 1) % recentSize
}

func (r *recentRing) at(i int) recentMsg { return r.buf[(r.start+i)%len(r.buf)] }

func (r *recentRing) newest() recentMsg { return r.at(len(r.buf) - 1) }

// covers reports whether the ring holds every message with a timestamp
// >= ts (so that a range starting there can be answered from memory).
func (r *recentRing) covers(ts int64, h head) bool {
	if h.seq == 0 {
		return true
	}
	if len(r.buf) == 0 {
		return false
	}
	oldest := r.at(0)
	// Complete from oldest on when its seq joins the head without gaps.
	if oldest.seq+int64(len(r.buf))-1 != h.seq {
		return false
	}
	return ts >= oldest.ts || oldest.seq == 1
}

// atOrBefore returns the newest message with a timestamp <= ts.
func (r *recentRing) atOrBefore(ts int64) (recentMsg, bool) {
	for i := len(r.buf) - 1; i >= 0; i-- {
		if m := r.at(i); m.ts <= ts {
			return m, true
		}
	}
	return recentMsg{}, false
}

// between calls f for each message with from <= ts <= to, oldest first.
func (r *recentRing) between(from, to int64, f func(recentMsg)) {
	for i := 0; i < len(r.buf); i++ {
		if m := r.at(i); m.ts >= from && m.ts <= to {
			f(m)
		}
	}
}

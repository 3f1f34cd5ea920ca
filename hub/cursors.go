package hub

import (
	"context"
	"sync"
	"time"

	realtime "github.com/leanhub/realtime"
)

// Cursor moves (client acks and reads) are the hottest input of a group
// chat: every member of a busy group acks about once a second. They never
// wait for the store: cursorBuffer keeps, per (conversation, client), the
// furthest move not yet written, and its writer hands all of them to
// Store.UpdateCursors at most every cursorFlushInterval (one multi-row
// statement in the store's next group-commit transaction). A crash loses
// at most the moves of the last interval: a delivered cursor that moves
// back only makes the SDK ask for messages it dedupes by id, a read cursor
// that moves back shows a few messages unread again.
//
// Readers of cursors (login sync, receipts queries) overlay the pending
// moves on what the store returns, so nothing looks older than it is.
// That includes the moves of writes that completed while the read ran (its
// snapshot may predate them): a reader takes a mark before it reads, and
// the buffer keeps the last recentWrites written batches.
//
// With several nodes the overlay must know the other nodes' pending moves
// too (a client reads on one node, its peer asks for receipts on
// another): the writer publishes new moves every cursorPublishInterval,
// and each node keeps the others' for remoteCursorTTL, longer than they
// take to reach the store.

const (
	cursorFlushInterval = 20 * time.Millisecond
	// cursorPublishInterval is how often new moves go to the other nodes.
	cursorPublishInterval = 5 * time.Millisecond
	// remoteCursorTTL is how long another node's move stays in the
	// overlay.
	remoteCursorTTL = 5 * time.Second
	// maxPendingCursors bounds the moves waiting for the store (a long
	// store outage): beyond it new delivered-only moves are dropped (the
	// SDK acks again later); read moves are always kept.
	maxPendingCursors = 1_000_000
	// recentWrites is how many written batches stay in the overlay for
	// reads that began before they were written (each batch is at least
	// cursorFlushInterval apart).
	recentWrites = 8
)

type cursorKey struct{ conv, client string }

type cursorBuffer struct {
	e     *engine
	mu    sync.Mutex
	moves map[cursorKey]realtime.Cursor
	// movesSince is when moves last went from empty to not empty: the
	// age of the oldest move waiting (Metrics.CursorsWritten's lag).
	movesSince time.Time
	// writing are the moves of the write in progress: readers see them
	// until the store has them.
	writing map[cursorKey]realtime.Cursor
	// fresh are the moves not yet published to the other nodes (several
	// nodes only); remote are theirs.
	fresh  map[cursorKey]realtime.Cursor
	remote map[cursorKey]remoteCursor
	signal chan struct{}
	// failures counts consecutive failed writes (backoff).
	failures int
	dropped  int64
	// written counts completed writes; recent holds the last batches,
	// recent[n%recentWrites] being the one that made written n.
	written uint64
	recent  [recentWrites]map[cursorKey]realtime.Cursor
}

// mark is taken before a store read of cursors, for the overlay after it.
type cursorMark uint64

func (b *cursorBuffer) mark() cursorMark {
	b.mu.Lock()
	defer b.mu.Unlock()
	return cursorMark(b.written)
}

type remoteCursor struct {
	c  realtime.Cursor
	at time.Time
}

func newCursorBuffer(e *engine) *cursorBuffer {
	return &cursorBuffer{e: e, moves: make(map[cursorKey]realtime.Cursor), signal: make(chan struct{}, 1)}
}

// note records a move in fresh (for the other nodes); b.mu is held.
func (b *cursorBuffer) noteLocked(k cursorKey, c realtime.Cursor) {
	if b.e.h.cl == nil {
		return
	}
	if b.fresh == nil {
		b.fresh = make(map[cursorKey]realtime.Cursor)
	}
	b.fresh[k] = mergeCursor(b.fresh[k], c)
}

// mergeCursor is the furthest of two moves of one cursor.
func mergeCursor(a, c realtime.Cursor) realtime.Cursor {
	a.ConvID, a.ClientID = c.ConvID, c.ClientID
	a.DeliveredAt = max(a.DeliveredAt, c.DeliveredAt)
	if c.ReadSeq > a.ReadSeq {
		a.ReadSeq, a.ReadAt, a.ReadMessageID = c.ReadSeq, c.ReadAt, c.ReadMessageID
	}
	return a
}

// publishFresh hands the moves not yet published to the other nodes.
func (b *cursorBuffer) publishFresh() {
	b.mu.Lock()
	fresh := b.fresh
	b.fresh = nil
	b.mu.Unlock()
	if len(fresh) == 0 {
		return
	}
	list := make([]realtime.Cursor, 0, len(fresh))
	for _, c := range fresh {
		list = append(list, c)
	}
	b.e.h.cl.publishCursors(list)
}

// addRemote merges another node's moves into the overlay.
func (b *cursorBuffer) addRemote(cs []realtime.Cursor) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.remote == nil {
		b.remote = make(map[cursorKey]remoteCursor)
	}
	for _, c := range cs {
		k := cursorKey{c.ConvID, c.ClientID}
		b.remote[k] = remoteCursor{c: mergeCursor(b.remote[k].c, c), at: now}
	}
}

// forgetRemote drops other nodes' moves older than remoteCursorTTL (the
// store has them by then).
func (b *cursorBuffer) forgetRemote() {
	cut := time.Now().Add(-remoteCursorTTL)
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, r := range b.remote {
		if r.at.Before(cut) {
			delete(b.remote, k)
		}
	}
}

// delivered records that client received conv's messages up to ts.
func (b *cursorBuffer) delivered(conv, client string, ts int64) {
	k := cursorKey{conv, client}
	b.mu.Lock()
	c, ok := b.moves[k]
	if !ok && len(b.moves) >= maxPendingCursors {
		b.dropped++
		b.mu.Unlock()
		return
	}
	if ts > c.DeliveredAt {
		c.ConvID, c.ClientID, c.DeliveredAt = conv, client, ts
		if len(b.moves) == 0 {
			b.movesSince = time.Now()
		}
		b.moves[k] = c
		b.noteLocked(k, c)
	}
	b.mu.Unlock()
	b.wake()
}

// read records that client read conv up to the message (seq, ts, mid).
func (b *cursorBuffer) read(conv, client string, seq, ts int64, mid string) {
	k := cursorKey{conv, client}
	b.mu.Lock()
	c := b.moves[k]
	c.ConvID, c.ClientID = conv, client
	if seq > c.ReadSeq {
		c.ReadSeq, c.ReadAt, c.ReadMessageID = seq, ts, mid
	}
	c.DeliveredAt = max(c.DeliveredAt, ts)
	if len(b.moves) == 0 {
		b.movesSince = time.Now()
	}
	b.moves[k] = c
	b.noteLocked(k, c)
	b.mu.Unlock()
	b.wake()
}

// pending returns the move of one cursor that a store read begun at mark
// may not have seen: queued, being written, or written since the mark.
func (b *cursorBuffer) pending(conv, client string, mark cursorMark) (realtime.Cursor, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := cursorKey{conv, client}
	c, ok := b.moves[k]
	if w, wok := b.writing[k]; wok {
		c, ok = mergeCursor(c, w), true
	}
	for n := b.written; n > uint64(mark) && b.written-n < recentWrites; n-- {
		if w, wok := b.recent[n%recentWrites][k]; wok {
			c, ok = mergeCursor(c, w), true
		}
	}
	if r, rok := b.remote[k]; rok {
		c, ok = mergeCursor(c, r.c), true
	}
	return c, ok
}

func (b *cursorBuffer) wake() {
	select {
	case b.signal <- struct{}{}:
	default:
	}
}

// run writes pending moves until the engine stops, then writes the last
// ones.
func (b *cursorBuffer) run() {
	quit := b.e.quit
	for {
		select {
		case <-b.signal:
		case <-quit:
			b.flush(context.Background())
			return
		}
		// Let moves gather for a moment: one statement for many. With
		// several nodes, what is new goes to the others meanwhile.
		t := time.NewTimer(b.backoff())
		var pub <-chan time.Time
		var tick *time.Ticker
		if b.e.h.cl != nil {
			b.publishFresh()
			tick = time.NewTicker(cursorPublishInterval)
			pub = tick.C
		}
	gather:
		for {
			select {
			case <-t.C:
				break gather
			case <-pub:
				b.publishFresh()
			case <-quit:
				t.Stop()
				if tick != nil {
					tick.Stop()
					b.publishFresh()
				}
				b.flush(context.Background())
				return
			}
		}
		if tick != nil {
			tick.Stop()
			b.publishFresh()
		}
		b.flush(context.Background())
	}
}

func (b *cursorBuffer) backoff() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := cursorFlushInterval
	for i := 0; i < b.failures && d < 5*time.Second; i++ {
		d *= 2
	}
	return d
}

// flush writes what is pending. On failure the moves go back into the
// buffer (merged with newer ones) and are written on the next try.
func (b *cursorBuffer) flush(ctx context.Context) {
	b.mu.Lock()
	if len(b.moves) == 0 {
		b.mu.Unlock()
		return
	}
	batch := b.moves
	since := b.movesSince
	b.moves = make(map[cursorKey]realtime.Cursor, len(batch))
	b.writing = batch
	dropped := b.dropped
	b.dropped = 0
	b.mu.Unlock()
	if dropped > 0 {
		b.e.h.log.Warn("cursor moves dropped: too many waiting for the store", "dropped", dropped)
	}
	list := make([]realtime.Cursor, 0, len(batch))
	for _, c := range batch {
		list = append(list, c)
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	err := b.e.h.store.UpdateCursors(ctx, list)
	cancel()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writing = nil
	if err == nil {
		b.e.h.cfg.Metrics.CursorsWritten(len(list), time.Since(since))
		b.failures = 0
		b.written++
		b.recent[b.written%recentWrites] = batch
		return
	}
	b.failures++
	if len(b.moves) == 0 || since.Before(b.movesSince) {
		b.movesSince = since
	}
	b.e.h.log.Error("write cursors; will retry", "cursors", len(list), "attempt", b.failures, "err", err)
	for k, old := range batch {
		c, ok := b.moves[k]
		if !ok {
			b.moves[k] = old
			continue
		}
		c.DeliveredAt = max(c.DeliveredAt, old.DeliveredAt)
		if old.ReadSeq > c.ReadSeq {
			c.ReadSeq, c.ReadAt, c.ReadMessageID = old.ReadSeq, old.ReadAt, old.ReadMessageID
		}
		b.moves[k] = c
	}
	b.wake()
}

// overlayMembers moves the cursors of members to the pending moves.
func (b *cursorBuffer) overlayMembers(members []realtime.Member, mark cursorMark) {
	for i := range members {
		m := &members[i]
		c, ok := b.pending(m.ConvID, m.ClientID, mark)
		if !ok {
			continue
		}
		m.DeliveredAt = max(m.DeliveredAt, c.DeliveredAt, c.ReadAt)
		if c.ReadSeq > 0 && c.ReadAt > m.ReadAt {
			m.ReadAt, m.ReadMessageID = c.ReadAt, c.ReadMessageID
		}
	}
}

// overlayUnread corrects a client's unread tuples for reads not yet
// written: a conversation read up to its newest message drops out.
func (b *cursorBuffer) overlayUnread(client string, tuples []realtime.UnreadTuple, mark cursorMark) []realtime.UnreadTuple {
	out := tuples[:0]
	for _, t := range tuples {
		c, ok := b.pending(t.ConvID, client, mark)
		if ok && c.ReadSeq > 0 && t.Last != nil && t.Last.Seq > 0 {
			left := t.Last.Seq - c.ReadSeq
			if left <= 0 {
				continue
			}
			if int(left) < t.Unread {
				t.Unread = int(left)
			}
		}
		out = append(out, t)
	}
	return out
}

// settle writes one client's pending moves now, before its logout is
// answered: with several nodes the client may log in on another node
// next, whose login sync reads the store (the overlay is per node). If
// the write fails the moves go back into the buffer.
func (b *cursorBuffer) settle(ctx context.Context, client string) {
	b.mu.Lock()
	var mine []realtime.Cursor
	for k, c := range b.moves {
		if k.client == client {
			mine = append(mine, c)
			delete(b.moves, k)
		}
	}
	b.mu.Unlock()
	if len(mine) == 0 {
		return
	}
	if err := b.e.h.store.UpdateCursors(ctx, mine); err != nil {
		b.e.h.log.Error("write cursors at logout; will retry", "client", client, "err", err)
		for _, c := range mine {
			b.read(c.ConvID, c.ClientID, c.ReadSeq, c.ReadAt, c.ReadMessageID)
			b.delivered(c.ConvID, c.ClientID, c.DeliveredAt)
		}
	}
}

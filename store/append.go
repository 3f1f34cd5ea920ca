package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/leanhub/realtime"
)

// appendReq is one AppendMessages or UpdateCursors call waiting for the
// writer.
type appendReq struct {
	msgs    []*realtime.Message     // validated copies; nil entries failed validation
	cursors []realtime.Cursor       // validated cursor moves
	res     []realtime.AppendResult // filled by the writer
	err     error                   // infrastructure failure of the whole call
	done    chan struct{}
}

// AppendMessages implements realtime.Store with group commit: the call is
// queued to the store's single writer goroutine, which writes whatever
// concurrent calls are queued in one transaction and answers each of them
// after the commit. Validation failures (ErrInvalidMessage for an empty or
// malformed sender, ErrMessageTooLarge, ErrConvNotFound for a malformed
// conversation id) are per-message results, like membership failures.
// Messages with Transient set are appended like any other: the hub does not
// store transient messages, so the flag is its business.
//
// When ctx ends while the call waits, AppendMessages returns ctx.Err(); the
// messages may still be written (a retry with the same ClientMsgID then
// reports them as duplicates).
func (s *SQL) AppendMessages(ctx context.Context, msgs []*realtime.Message) ([]realtime.AppendResult, error) {
	req := &appendReq{
		msgs: make([]*realtime.Message, len(msgs)),
		res:  make([]realtime.AppendResult, len(msgs)),
		done: make(chan struct{}),
	}
	valid := 0
	for i, m := range msgs {
		if err := s.checkMessage(m); err != nil {
			req.res[i].Err = err
			continue
		}
		c := *m
		c.ID, c.Timestamp, c.Seq = "", 0, 0
		c.PatchTimestamp, c.Recalled, c.PatchCode, c.PatchReason = 0, false, 0, ""
		c.MentionPids = slices.Clone(m.MentionPids)
		c.To = slices.Clone(m.To)
		c.Binary = slices.Clone(m.Binary)
		req.msgs[i] = &c
		valid++
	}
	if valid == 0 {
		return req.res, nil
	}
	if err := s.enqueue(ctx, req); err != nil {
		return nil, err
	}
	return req.res, nil
}

// UpdateCursors implements realtime.Store. The moves are written by the
// append writer, in the transaction of the next batch (with the messages
// queued with them, if any), as one multi-row UPDATE: several moves of
// one cursor in a batch become one (the furthest). Malformed ids are
// ignored like non-members.
func (s *SQL) UpdateCursors(ctx context.Context, cursors []realtime.Cursor) error {
	req := &appendReq{done: make(chan struct{})}
	for _, c := range cursors {
		if !validID(c.ConvID) || !validClientID(c.ClientID) || (c.DeliveredAt <= 0 && c.ReadSeq <= 0) {
			continue
		}
		if c.ReadSeq > 0 && (!validText(c.ReadMessageID) || len(c.ReadMessageID) > 64) {
			c.ReadSeq, c.ReadAt, c.ReadMessageID = 0, 0, ""
			if c.DeliveredAt <= 0 {
				continue
			}
		}
		req.cursors = append(req.cursors, c)
	}
	if len(req.cursors) == 0 {
		return nil
	}
	return s.enqueue(ctx, req)
}

// enqueue hands req to the writer and waits for its answer.
func (s *SQL) enqueue(ctx context.Context, req *appendReq) error {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	s.mu.RUnlock()
	select {
	case <-req.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return req.err
}

func (s *SQL) checkMessage(m *realtime.Message) error {
	switch {
	case m == nil:
		return realtime.ErrInvalidMessage.WithDetail("nil message")
	case !validID(m.ConvID):
		return realtime.ErrConvNotFound.WithDetail("malformed conversation id %q", m.ConvID)
	case !validClientID(m.From):
		return realtime.ErrInvalidMessage.WithDetail("invalid sender %q", m.From)
	case len(m.Data)+len(m.Binary) > s.maxSize:
		return realtime.ErrMessageTooLarge.WithDetail("%d bytes, the limit is %d", len(m.Data)+len(m.Binary), s.maxSize)
	case !validText(m.Data):
		return realtime.ErrInvalidMessage.WithDetail("body is not UTF-8 text without NUL")
	case len(m.ClientMsgID) > 128 || !validText(m.ClientMsgID):
		return realtime.ErrInvalidMessage.WithDetail("invalid client message id")
	}
	for _, p := range m.MentionPids {
		if !validClientID(p) {
			return realtime.ErrInvalidMessage.WithDetail("invalid mentioned client id %q", p)
		}
	}
	for _, p := range m.To {
		if !validClientID(p) {
			return realtime.ErrInvalidMessage.WithDetail("invalid recipient %q", p)
		}
	}
	return nil
}

// writer is the group-commit loop: it takes whatever appends are queued,
// waits a little for more when several callers were sending at the end of
// the last batch (up to the window, or until that many calls are queued),
// writes them in one transaction and answers them.
//
// "Sending" counts the AppendMessages calls in progress when the last batch
// was answered: that batch's callers and those already waiting for the
// next. With many senders each waiting for its answer before sending again,
// counting only the last batch's callers lets the senders settle into two
// groups that alternate, each writing half-size batches.
func (s *SQL) writer() {
	defer close(s.writerDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	sending := 0
	var batch []*appendReq
	for {
		batch = batch[:0]
		n := 0
		add := func(r *appendReq) {
			batch = append(batch, r)
			for _, m := range r.msgs {
				if m != nil {
					n++
				}
			}
			if len(r.cursors) > 0 {
				n++
			}
		}
		select {
		case r := <-s.reqs:
			add(r)
		case <-s.quit:
			for {
				select {
				case r := <-s.reqs:
					add(r)
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				_ = s.commit(batch)
			}
			return
		}
	drain:
		for n < s.maxBatch {
			select {
			case r := <-s.reqs:
				add(r)
			default:
				break drain
			}
		}
		if s.window > 0 && sending > 1 && len(batch) < sending && n < s.maxBatch {
			timer.Reset(s.window)
		wait:
			for len(batch) < sending && n < s.maxBatch {
				select {
				case r := <-s.reqs:
					add(r)
				case <-timer.C:
					break wait
				case <-s.quit:
					break wait
				}
			}
			timer.Stop()
		}
		sending = s.commit(batch)
	}
}

// item is one message of a batch.
type item struct {
	req *appendReq
	i   int // index in req.msgs
	msg *realtime.Message
}

// commit writes a batch and answers its callers. The first attempt is
// optimistic (see writeBatchOptimistic); a failed one is retried reading
// everything (writeBatchSQLite, or writeBatchLocked on PostgreSQL), which
// cannot conflict. Infrastructure errors go to every caller. It returns the number of
// AppendMessages calls in progress just before it answered.
func (s *SQL) commit(batch []*appendReq) int {
	var items []item
	var cursors []realtime.Cursor
	for _, r := range batch {
		for i, m := range r.msgs {
			if m != nil {
				items = append(items, item{r, i, m})
			}
		}
		cursors = append(cursors, r.cursors...)
	}
	moves := coalesceCursors(cursors)
	ctx := context.Background()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var results []realtime.AppendResult
		switch {
		case attempt == 0:
			results, err = s.writeBatchOptimistic(ctx, items, moves)
		case s.pg:
			results, err = s.writeBatchLocked(ctx, items, moves)
		default:
			results, err = s.writeBatchSQLite(ctx, items, moves)
		}
		if err == nil {
			s.batches.Add(1)
			s.batchedMsgs.Add(int64(len(items)))
			for k, it := range items {
				it.req.res[it.i] = results[k]
			}
			break
		}
		s.retries.Add(1)
		if attempt == 0 {
			// A wrong guess of the cache, a retried send, or a conflict
			// with another process; the retry reads everything (on
			// PostgreSQL under locks) and cannot conflict.
			s.log.Debug("store: optimistic append batch failed", "messages", len(items), "err", err)
			continue
		}
		s.log.Warn("store: append batch failed", "messages", len(items), "attempt", attempt+1, "err", err)
	}
	sending := int(s.inflight.Load())
	for _, r := range batch {
		if err != nil {
			r.err = fmt.Errorf("store: append: %w", err)
		}
		close(r.done)
	}
	return sending
}

// writeBatchSQLite writes items in one transaction after reading everything
// they depend on (retried sends included): the store's writes are
// serialized in-process and BEGIN IMMEDIATE excludes other writers, so
// what the lookup reads cannot change before the writes.
func (s *SQL) writeBatchSQLite(ctx context.Context, items []item, moves map[cursorKey]cursorMove) ([]realtime.AppendResult, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var results []realtime.AppendResult
	var v *batchView
	err := s.w.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		v, err = s.lookup(ctx, tx, items)
		if err != nil {
			return err
		}
		var p *batchPlan
		results, p = s.plan(v, items, moves)
		if p == nil {
			return nil
		}
		return s.execWrites(ctx, tx.Tx, p)
	})
	s.prepareNew(ctx)
	if err == nil {
		s.cache.remember(v)
	}
	return results, err
}

// writeBatchOptimistic writes items assuming what the writer's cache (see
// headCache) knows about the batch's conversations and senders is still
// true, and reads only what it does not know. Retried sends are not looked
// up: one whose first copy is stored fails the unique index. The writes
// check the assumptions (see writeStmts); when one is wrong, the batch
// fails, writes nothing and forgets its cache entries, and commit retries
// it reading everything.
//
// On PostgreSQL the batch has no explicit transaction: one round trip when
// the cache knows everything, else two (an autocommit lookup, then the
// writes as one multi-statement query, which PostgreSQL runs as one
// implicit transaction). On SQLite it is one transaction of the writer.
func (s *SQL) writeBatchOptimistic(ctx context.Context, items []item, moves map[cursorKey]cursorMove) ([]realtime.AppendResult, error) {
	if n := s.imports.Load(); n != s.cache.imports {
		s.cache = headCache{imports: n} // an import moved heads: forget them all
	}
	v := newBatchView()
	var r reads
	for _, id := range batchConvIDs(items) {
		if row, ok := s.cache.convs[id]; ok {
			v.convs[id] = &convState{row: row, seq0: row.Seq}
		} else {
			r.convs = append(r.convs, id)
		}
	}
	for _, k := range needs(items).pairs {
		if s.cache.members[k] {
			v.member[k] = true
		} else {
			r.pairs = append(r.pairs, k)
		}
	}
	var results []realtime.AppendResult
	write := func(db bun.IDB, ex execer) error {
		if err := s.read(ctx, db, r, v); err != nil {
			return err
		}
		var p *batchPlan
		results, p = s.plan(v, items, moves)
		if p == nil {
			return nil
		}
		return s.execWrites(ctx, ex, p)
	}
	var err error
	if s.pg {
		err = write(s.w, s.w.DB)
	} else {
		s.wmu.Lock()
		err = s.w.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return write(tx, tx.Tx) })
		s.prepareNew(ctx)
		s.wmu.Unlock()
	}
	if err != nil {
		s.cache.forget(v)
		return nil, err
	}
	s.cache.remember(v)
	return results, nil
}

// headCache is what the writer knows from its earlier batches:
// conversation heads as it last read or wrote them, and (conversation,
// sender) pairs it found to be members. It is owned by the writer
// goroutine and is only a guess: writeStmts checks every entry a batch
// relies on, another process's appends or a removed member make the batch
// fail, and its entries are forgotten. It is cleared when it grows past
// maxCached entries, and after an import (ImportMessages) committed.
type headCache struct {
	convs   map[string]convRow
	members map[cursorKey]bool
	imports int64 // SQL.imports when the cache was started
}

const maxCached = 1 << 16

func (c *headCache) remember(v *batchView) {
	if c.convs == nil || len(c.convs) > maxCached || len(c.members) > maxCached {
		c.convs, c.members = map[string]convRow{}, map[cursorKey]bool{}
	}
	for id, st := range v.convs {
		c.convs[id] = st.row
	}
	for k, ok := range v.member {
		if ok {
			c.members[k] = true
		}
	}
}

func (c *headCache) forget(v *batchView) {
	for id := range v.convs {
		delete(c.convs, id)
	}
	for k := range v.member {
		delete(c.members, k)
	}
}

// writeBatchLocked writes items on PostgreSQL in a transaction that first
// locks the batch's conversation rows in id order (SELECT ... FOR UPDATE),
// so other processes' appends to them wait, then reads everything (retried
// sends included) and writes like writeBatchOptimistic, whose checks then
// always pass.
func (s *SQL) writeBatchLocked(ctx context.Context, items []item, moves map[cursorKey]cursorMove) ([]realtime.AppendResult, error) {
	var results []realtime.AppendResult
	var v *batchView
	err := s.w.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if ids := batchConvIDs(items); len(ids) > 0 {
			if _, err := tx.NewRaw("SELECT 1 FROM conversations WHERE id IN (?) ORDER BY id FOR UPDATE",
				bun.In(ids)).Exec(ctx); err != nil {
				return fmt.Errorf("lock conversations: %w", err)
			}
		}
		var err error
		v, err = s.lookup(ctx, tx, items)
		if err != nil {
			return err
		}
		var p *batchPlan
		results, p = s.plan(v, items, moves)
		if p == nil {
			return nil
		}
		return s.execWrites(ctx, tx.Tx, p)
	})
	if err == nil {
		s.cache.remember(v)
	}
	return results, err
}

// batchConvIDs returns the sorted, distinct conversation ids of items.
func batchConvIDs(items []item) []string {
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, it.msg.ConvID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

type cursorKey struct{ conv, client string }

type dedupKey struct{ from, clientMsgID string }

// convState is the head of a conversation as the lookup read it (seq0) and
// as the batch moves it.
type convState struct {
	row     convRow
	seq0    int64
	changed bool
}

// batchView is what a batch reads before writing: its conversations, which
// of its senders are members, and earlier copies of retried messages.
type batchView struct {
	convs  map[string]*convState
	member map[cursorKey]bool
	stored map[dedupKey]*realtime.Message
}

// lookupRow is one row of the lookup query: a conversation head (kind
// "c"), a membership (kind "m": conv_id, client_id) or an earlier copy of
// a retried message (kind "d": from_id, client_msg_id and its id in s).
type lookupRow struct {
	Kind          string `bun:"kind"`
	A             string `bun:"a"`
	B             string `bun:"b"`
	S             string `bun:"s"`
	Seq           int64  `bun:"seq"`
	LastTS        int64  `bun:"last_ts"`
	MentionAllSeq int64  `bun:"mention_all_seq"`
	ExpiresAt     int64  `bun:"expires_at"`
	Transient     bool   `bun:"is_transient"`
	Temporary     bool   `bun:"is_temporary"`
}

// lookup reads everything a batch depends on in one query (three SELECTs
// joined by UNION ALL: conversation heads by primary key, memberships of
// the (conversation, sender) pairs through the members primary key, and
// retried (sender, client message id) pairs through messages_dedup), plus
// one more query for the full earlier copies when there are any.
func (s *SQL) lookup(ctx context.Context, db bun.IDB, items []item) (*batchView, error) {
	v := newBatchView()
	r := needs(items)
	if err := s.read(ctx, db, r, v); err != nil {
		return nil, err
	}
	return v, nil
}

func newBatchView() *batchView {
	return &batchView{
		convs:  map[string]*convState{},
		member: map[cursorKey]bool{},
		stored: map[dedupKey]*realtime.Message{},
	}
}

// reads lists what a batch must read: conversation ids (sorted), (conversation,
// sender) pairs and (sender, client message id) keys.
type reads struct {
	convs []string
	pairs []cursorKey
	dups  []dedupKey
}

// needs lists everything items depend on.
func needs(items []item) reads {
	r := reads{convs: batchConvIDs(items)}
	seenPair := map[cursorKey]bool{}
	for _, it := range items {
		if k := (cursorKey{it.msg.ConvID, it.msg.From}); !seenPair[k] {
			seenPair[k] = true
			r.pairs = append(r.pairs, k)
		}
		if it.msg.ClientMsgID != "" {
			r.dups = append(r.dups, dedupKey{it.msg.From, it.msg.ClientMsgID})
		}
	}
	return r
}

// read runs the lookup query for r and adds what it finds to v.
func (s *SQL) read(ctx context.Context, db bun.IDB, r reads, v *batchView) error {
	if len(r.convs) == 0 && len(r.pairs) == 0 && len(r.dups) == 0 {
		return nil
	}
	var q strings.Builder
	var args []any
	q.WriteString("SELECT 'c' AS kind, c.id AS a, '' AS b, c.last_mid AS s, c.seq AS seq, c.last_ts AS last_ts, " +
		"c.mention_all_seq AS mention_all_seq, c.expires_at AS expires_at, c.is_transient AS is_transient, " +
		"c.is_temporary AS is_temporary FROM conversations c WHERE c.id ")
	switch {
	case len(r.convs) == 0:
		q.WriteString("IS NULL")
	case s.pg:
		q.WriteString("= ANY(?::text[])")
		args = append(args, pgdialect.Array(r.convs))
	default:
		q.WriteString("IN (?)")
		args = append(args, bun.In(r.convs))
	}
	// Memberships: one row per (conversation, sender) pair, seq 1 for a
	// member; the scalar subquery makes each a primary-key probe.
	if len(r.pairs) > 0 {
		pairConvs, pairClients := make([]string, len(r.pairs)), make([]string, len(r.pairs))
		for i, k := range r.pairs {
			pairConvs[i], pairClients[i] = k.conv, k.client
		}
		table, targs := s.derivedTable([]string{"c:text", "s:text"}, pairConvs, pairClients)
		q.WriteString("\nUNION ALL SELECT 'm', v.c, v.s, '', COALESCE((SELECT 1 FROM members mb " +
			"WHERE mb.conv_id = v.c AND mb.client_id = v.s), 0), 0, 0, 0, FALSE, FALSE FROM " + table)
		args = append(args, targs...)
	}
	if len(r.dups) > 0 {
		dupFroms, dupKeys := make([]string, len(r.dups)), make([]string, len(r.dups))
		for i, k := range r.dups {
			dupFroms[i], dupKeys[i] = k.from, k.clientMsgID
		}
		table, targs := s.derivedTable([]string{"f:text", "k:text"}, dupFroms, dupKeys)
		q.WriteString("\nUNION ALL SELECT 'd', m.from_id, m.client_msg_id, m.id, 0, 0, 0, 0, FALSE, FALSE FROM " + table +
			" JOIN messages m ON m.from_id = v.f AND m.client_msg_id = v.k")
		args = append(args, targs...)
	}
	var rows []lookupRow
	if err := db.NewRaw(q.String(), args...).Scan(ctx, &rows); err != nil {
		return fmt.Errorf("look up batch: %w", err)
	}
	var dupIDs []string
	for _, r := range rows {
		switch r.Kind {
		case "c":
			v.convs[r.A] = &convState{seq0: r.Seq, row: convRow{
				ID: r.A, Seq: r.Seq, LastTS: r.LastTS, LastMID: r.S, MentionAllSeq: r.MentionAllSeq,
				ExpiresAt: r.ExpiresAt, Transient: r.Transient, Temporary: r.Temporary,
			}}
		case "m":
			v.member[cursorKey{r.A, r.B}] = r.Seq == 1
		case "d":
			dupIDs = append(dupIDs, r.S)
		}
	}
	if len(dupIDs) > 0 {
		var ms []msgRow
		if err := db.NewRaw("SELECT "+msgCols+" FROM messages m WHERE m.id IN (?)", bun.In(dupIDs)).Scan(ctx, &ms); err != nil {
			return fmt.Errorf("load duplicates: %w", err)
		}
		for i := range ms {
			v.stored[dedupKey{ms[i].From, ms[i].ClientMsgID}] = ms[i].toMessage()
		}
	}
	return nil
}

type senderCursor struct {
	seq int64
	ts  int64
	mid string
}

// batchPlan is what a batch writes: its new messages, the conversation heads
// they move, the senders' cursors (one per conversation and sender: its
// newest message of the batch) and the newest mention of mentioned members.
type batchPlan struct {
	inserts  []msgRow
	stored   []*realtime.Message // the inserted messages (announced)
	convs    []*convState        // changed ones, in id order
	senders  map[cursorKey]senderCursor
	mentions map[cursorKey]int64
	moves    map[cursorKey]cursorMove // UpdateCursors calls of the batch
}

// cursorMove is where UpdateCursors moves one member's cursors (0: not
// that cursor).
type cursorMove struct {
	delivered int64
	readSeq   int64
	readTS    int64
	readMID   string
}

// coalesceCursors keeps the furthest move of each cursor; moving the read
// cursor moves the delivered one to at least the same message.
func coalesceCursors(cs []realtime.Cursor) map[cursorKey]cursorMove {
	if len(cs) == 0 {
		return nil
	}
	out := make(map[cursorKey]cursorMove, len(cs))
	for _, c := range cs {
		k := cursorKey{c.ConvID, c.ClientID}
		m := out[k]
		m.delivered = max(m.delivered, c.DeliveredAt, c.ReadAt)
		if c.ReadSeq > m.readSeq {
			m.readSeq, m.readTS, m.readMID = c.ReadSeq, c.ReadAt, c.ReadMessageID
		}
		out[k] = m
	}
	return out
}

// plan decides the fate of every item from v: per-message errors,
// duplicates, and ids, seqs and timestamps of the messages to store. The
// plan is nil when nothing is to be written.
func (s *SQL) plan(v *batchView, items []item, moves map[cursorKey]cursorMove) ([]realtime.AppendResult, *batchPlan) {
	results := make([]realtime.AppendResult, len(items))
	now := s.clock()
	nowMs := now.UnixMilli()
	p := &batchPlan{
		inserts:  make([]msgRow, 0, len(items)),
		senders:  map[cursorKey]senderCursor{},
		mentions: map[cursorKey]int64{},
		moves:    moves,
	}
	batchFirst := map[dedupKey]int{} // first item of the batch with that key
	for k, it := range items {
		m := it.msg
		c := v.convs[m.ConvID]
		if c == nil {
			results[k].Err = realtime.ErrConvNotFound.WithDetail("conversation %s", m.ConvID)
			continue
		}
		if c.row.expired(nowMs) {
			results[k].Err = realtime.ErrTempConvExpired.WithDetail("conversation %s expired", m.ConvID)
			continue
		}
		dk := dedupKey{m.From, m.ClientMsgID}
		if m.ClientMsgID != "" {
			if old := v.stored[dk]; old != nil {
				results[k] = realtime.AppendResult{Message: old, Duplicate: true}
				continue
			}
			if first, ok := batchFirst[dk]; ok {
				results[k] = realtime.AppendResult{Message: results[first].Message, Duplicate: true}
				continue
			}
		}
		if !c.row.Transient && !m.System && !v.member[cursorKey{m.ConvID, m.From}] {
			results[k].Err = realtime.ErrInvalidTarget.WithDetail("%s is not a member of the conversation", m.From)
			continue
		}
		out := *m
		out.ID = newMsgID(now)
		out.Seq = c.row.Seq + 1
		out.Timestamp = max(nowMs, c.row.LastTS+1)
		c.row.Seq, c.row.LastTS, c.row.LastMID = out.Seq, out.Timestamp, out.ID
		if out.MentionAll {
			c.row.MentionAllSeq = out.Seq
		}
		if !c.changed {
			c.changed = true
			p.convs = append(p.convs, c)
		}
		results[k].Message = &out
		p.stored = append(p.stored, &out)
		if m.ClientMsgID != "" {
			batchFirst[dk] = k
		}
		p.inserts = append(p.inserts, msgRow{
			ID: out.ID, ConvID: out.ConvID, Seq: out.Seq, TS: out.Timestamp, From: out.From,
			ClientMsgID: out.ClientMsgID, Data: out.Data, Binary: out.Binary, LCType: lcType(out.Data),
			MentionAll: out.MentionAll, MentionPids: encodePids(out.MentionPids), Receipt: out.Receipt,
			ToIDs: encodeTo(out.To),
		})
		if !c.row.Transient {
			if !m.System {
				p.senders[cursorKey{m.ConvID, m.From}] = senderCursor{out.Seq, out.Timestamp, out.ID}
			}
			for _, pid := range out.MentionPids {
				if pid != m.From {
					p.mentions[cursorKey{m.ConvID, pid}] = out.Seq
				}
			}
		}
	}
	if len(p.inserts) == 0 && len(p.moves) == 0 {
		return results, nil
	}
	slices.SortFunc(p.convs, func(a, b *convState) int { return strings.Compare(a.row.ID, b.row.ID) })
	return results, p
}

// execer is a *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// writeStmt is a statement of a batch: on PostgreSQL formatted, on SQLite
// with ? placeholders, its arguments and the number of rows it must change
// (-1: any).
type writeStmt struct {
	query string
	args  []any
	rows  int64
}

// errConflict fails a SQLite batch whose checks found that what it read
// from the cache changed.
var errConflict = errors.New("append conflict: a conversation head or membership changed")

// execWrites runs the plan's statements: on PostgreSQL through
// database/sql directly (they are formatted already and must not be
// scanned for placeholders again) as one multi-statement Exec (one round
// trip, one implicit transaction outside writeBatchLocked); on SQLite one
// by one in the transaction tx, through statements prepared once per text
// (see prepareNew; the text only depends on the number of rows), checking
// the rows each changed.
func (s *SQL) execWrites(ctx context.Context, db execer, p *batchPlan) error {
	stmts := s.writeStmts(p)
	if s.pg {
		qs := make([]string, len(stmts))
		for i, st := range stmts {
			qs[i] = st.query
		}
		if _, err := db.ExecContext(ctx, strings.Join(qs, ";\n")); err != nil {
			return fmt.Errorf("write messages: %w", err)
		}
		return nil
	}
	tx := db.(*sql.Tx)
	for _, st := range stmts {
		var res sql.Result
		var err error
		if prepared, ok := s.stmts[st.query]; ok {
			res, err = tx.StmtContext(ctx, prepared).ExecContext(ctx, st.args...)
		} else {
			res, err = tx.ExecContext(ctx, st.query, st.args...)
			s.unprepared = append(s.unprepared, st.query)
		}
		if err != nil {
			return fmt.Errorf("write messages: %w", err)
		}
		if st.rows >= 0 {
			if n, err := res.RowsAffected(); err != nil || n != st.rows {
				return errConflict
			}
		}
	}
	return nil
}

// prepareNew prepares the SQLite batch statements execWrites ran without
// a prepared statement, for the next batches (parsing the statements cost
// more than executing them). It runs after the batch's transaction: the
// writer has one connection, and a statement prepared on it is reused in
// later transactions. There is at most one text per statement kind and
// batch size (mentions aside), and at most maxPrepared are kept; the cache
// is owned by the writer goroutine and closed by Close.
func (s *SQL) prepareNew(ctx context.Context) {
	const maxPrepared = 1024
	for _, q := range s.unprepared {
		if _, ok := s.stmts[q]; ok || len(s.stmts) >= maxPrepared {
			continue
		}
		st, err := s.w.DB.PrepareContext(ctx, q)
		if err != nil {
			continue // executed unprepared next time
		}
		if s.stmts == nil {
			s.stmts = map[string]*sql.Stmt{}
		}
		s.stmts[q] = st
	}
	s.unprepared = s.unprepared[:0]
}

// writeStmts formats the plan's statements: one UPDATE of the
// conversation heads, one multi-row INSERT of the messages, one UPDATE of
// the senders' cursors and one of mentioned members (each UPDATE joins a
// derivedTable of its rows).
//
// They check what the batch assumed, so that it can run without locking
// anything first (writeBatchOptimistic): the heads are updated only where
// seq is still the one the batch started from, the senders' cursors only
// where the member row still exists, and the batch fails unless every row
// was updated: on SQLite execWrites compares the rows changed; on
// PostgreSQL the statement itself fails (a CAST of a non-number to INTEGER
// is the way to raise an error from plain SQL), which rolls back the whole
// multi-statement query. The unique indexes catch retried sends.
//
// On PostgreSQL the heads' UPDATE is the batch's first row lock, and the
// conversations are the rows other writers lock first too. Two processes'
// optimistic batches normally lock them in the same order (the plan walks
// the id-sorted arrays, or the table); if they ever deadlock, PostgreSQL
// aborts one, which is retried by writeBatchLocked.
func (s *SQL) writeStmts(p *batchPlan) []writeStmt {
	var stmts []writeStmt
	// add appends a statement: formatted by bun on PostgreSQL, kept with
	// its arguments on SQLite (see execWrites); rows >= 0 is the number
	// of rows it must change.
	add := func(rows int, what, q string, args ...any) {
		if !s.pg {
			stmts = append(stmts, writeStmt{q, args, int64(rows)})
			return
		}
		q = s.w.NewRaw(q, args...).String()
		if rows >= 0 {
			q = fmt.Sprintf("WITH u AS (%s RETURNING 1) SELECT CAST(CASE WHEN COUNT(*) = %d THEN '0' "+
				"ELSE 'store: append conflict: %s changed' END AS INTEGER) FROM u", q, rows, what)
		}
		stmts = append(stmts, writeStmt{query: q, rows: -1})
	}
	if s.pg {
		// The batch probes conversations and members by primary key,
		// in pages that are cached: tell the planner, or it prefers
		// hashing a scan of a small table to a few dozen index probes.
		add(-1, "", "SET LOCAL random_page_cost = 1.1")
		s.lockStmts(add, p)
	}

	if len(p.inserts) > 0 {
		s.appendStmts(add, p)
	}
	if len(p.moves) > 0 {
		keys := sortedKeys(p.moves)
		cs, cl, mids := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
		ds, rseqs, rtss := make([]int64, len(keys)), make([]int64, len(keys)), make([]int64, len(keys))
		for i, k := range keys {
			m := p.moves[k]
			cs[i], cl[i], ds[i], rseqs[i], rtss[i], mids[i] = k.conv, k.client, m.delivered, m.readSeq, m.readTS, m.readMID
		}
		table, args := s.derivedTable([]string{"c:text", "s:text", "d:bigint", "rs:bigint", "rt:bigint", "rm:text"},
			cs, cl, ds, rseqs, rtss, mids)
		// In SET, members.* are the row's values before the update.
		add(-1, "", "UPDATE members SET "+
			"delivered_ts = CASE WHEN v.d > members.delivered_ts THEN v.d ELSE members.delivered_ts END, "+
			"read_ts = CASE WHEN v.rs > members.read_seq THEN v.rt ELSE members.read_ts END, "+
			"read_mid = CASE WHEN v.rs > members.read_seq THEN v.rm ELSE members.read_mid END, "+
			"read_seq = CASE WHEN v.rs > members.read_seq THEN v.rs ELSE members.read_seq END "+
			"FROM "+table+" WHERE members.conv_id = v.c AND members.client_id = v.s "+
			"AND (v.d > members.delivered_ts OR v.rs > members.read_seq)", args...)
	}
	if a := s.ann.Load(); a != nil && len(p.stored) > 0 {
		// In the batch's transaction: announced if and only if stored.
		for _, q := range s.notifyStmts(a, messageEvents(p.stored)) {
			stmts = append(stmts, writeStmt{query: q, rows: -1})
		}
	}
	return stmts
}

// lockStmts adds, first in a PostgreSQL batch, the row locks its updates
// will take, in one global order: the batch's conversations by id, then
// the member rows of those conversations (heads, senders, mentions) and of
// its cursor moves by (conversation, client). The updates' own order
// follows their join plans; two nodes' batches meeting in one group (one
// node appending, another writing its members' acks) took the same rows in
// different orders and deadlocked, each costing a deadlock_timeout.
func (s *SQL) lockStmts(add func(rows int, what, q string, args ...any), p *batchPlan) {
	convIDs := make([]string, 0, len(p.convs))
	for _, c := range p.convs {
		convIDs = append(convIDs, c.row.ID)
	}
	if len(convIDs) > 0 {
		add(-1, "", "SELECT count(*) FROM (SELECT 1 FROM conversations WHERE id = ANY(?::text[]) ORDER BY id FOR UPDATE) l", pgdialect.Array(convIDs))
	}
	keys := sortedKeys(p.moves)
	cs, cl := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		cs[i], cl[i] = k.conv, k.client
	}
	switch {
	case len(convIDs) > 0 && len(keys) > 0:
		add(-1, "", "SELECT count(*) FROM (SELECT 1 FROM members WHERE conv_id = ANY(?::text[]) "+
			"OR (conv_id, client_id) IN (SELECT * FROM unnest(?::text[], ?::text[])) ORDER BY conv_id, client_id FOR UPDATE) l",
			pgdialect.Array(convIDs), pgdialect.Array(cs), pgdialect.Array(cl))
	case len(convIDs) > 0:
		add(-1, "", "SELECT count(*) FROM (SELECT 1 FROM members WHERE conv_id = ANY(?::text[]) ORDER BY conv_id, client_id FOR UPDATE) l",
			pgdialect.Array(convIDs))
	case len(keys) > 0:
		add(-1, "", "SELECT count(*) FROM (SELECT 1 FROM members WHERE (conv_id, client_id) IN (SELECT * FROM unnest(?::text[], ?::text[])) "+
			"ORDER BY conv_id, client_id FOR UPDATE) l", pgdialect.Array(cs), pgdialect.Array(cl))
	}
}

// appendStmts adds the statements that store the plan's messages: the
// conversation heads, the messages, the senders' cursors and the mentions.
func (s *SQL) appendStmts(add func(rows int, what, q string, args ...any), p *batchPlan) {
	n := len(p.convs)
	convIDs, mids := make([]string, n), make([]string, n)
	seq0s, seqs, tss, mentionAll := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, c := range p.convs {
		convIDs[i], seq0s[i], seqs[i], tss[i], mids[i], mentionAll[i] =
			c.row.ID, c.seq0, c.row.Seq, c.row.LastTS, c.row.LastMID, c.row.MentionAllSeq
	}
	table, args := s.derivedTable([]string{"id:text", "seq0:bigint", "seq:bigint", "ts:bigint", "mid:text", "mas:bigint"},
		convIDs, seq0s, seqs, tss, mids, mentionAll)
	add(n, "conversation", "UPDATE conversations SET seq = v.seq, last_ts = v.ts, last_mid = v.mid, "+
		"mention_all_seq = v.mas FROM "+table+" WHERE conversations.id = v.id AND conversations.seq = v.seq0", args...)

	q, args := s.insertStmt(p.inserts)
	add(-1, "", q, args...)

	// Every member row carries its conversation's head (conv_seq), so the
	// login sync finds a client's unread conversations through the
	// members_unread partial index, whatever its number of memberships
	// with nothing new (unread.go). One statement for all member rows of
	// the batch's conversations.
	table, args = s.derivedTable([]string{"id:text", "seq:bigint"}, convIDs, seqs)
	add(-1, "", "UPDATE members SET conv_seq = v.seq FROM "+table+
		" WHERE members.conv_id = v.id AND members.conv_seq < v.seq", args...)

	if len(p.senders) > 0 {
		keys := sortedKeys(p.senders)
		cs, cl, mids := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
		seqs, tss := make([]int64, len(keys)), make([]int64, len(keys))
		for i, k := range keys {
			c := p.senders[k]
			cs[i], cl[i], seqs[i], tss[i], mids[i] = k.conv, k.client, c.seq, c.ts, c.mid
		}
		table, args := s.derivedTable([]string{"c:text", "s:text", "seq:bigint", "ts:bigint", "mid:text"}, cs, cl, seqs, tss, mids)
		add(len(keys), "membership", "UPDATE members SET read_seq = v.seq, read_ts = v.ts, read_mid = v.mid, "+
			"delivered_ts = CASE WHEN members.delivered_ts < v.ts THEN v.ts ELSE members.delivered_ts END "+
			"FROM "+table+" WHERE members.conv_id = v.c AND members.client_id = v.s", args...)
	}
	if len(p.mentions) > 0 {
		keys := sortedKeys(p.mentions)
		cs, cl, seqs := make([]string, len(keys)), make([]string, len(keys)), make([]int64, len(keys))
		for i, k := range keys {
			cs[i], cl[i], seqs[i] = k.conv, k.client, p.mentions[k]
		}
		table, args := s.derivedTable([]string{"c:text", "s:text", "seq:bigint"}, cs, cl, seqs)
		add(-1, "", "UPDATE members SET mention_seq = v.seq FROM "+table+
			" WHERE members.conv_id = v.c AND members.client_id = v.s", args...)
	}
}

// insertStmt returns the multi-row INSERT of the batch's messages and its
// arguments: INSERT ... VALUES on SQLite, INSERT ... SELECT from a
// derivedTable on PostgreSQL. Empty client message ids and binary bodies
// are stored as NULL (as bun stores msgRow).
func (s *SQL) insertStmt(rows []msgRow) (string, []any) {
	const cols = "id, conv_id, seq, ts, from_id, client_msg_id, data, bin, lctype, mention_all, mention_pids, receipt, to_ids"
	if !s.pg {
		var b strings.Builder
		args := make([]any, 0, 12*len(rows))
		b.WriteString("INSERT INTO messages (" + cols + ") VALUES ")
		for i, r := range rows {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			var cmid, bin any
			if r.ClientMsgID != "" {
				cmid = r.ClientMsgID
			}
			if len(r.Binary) > 0 {
				bin = r.Binary
			}
			args = append(args, r.ID, r.ConvID, r.Seq, r.TS, r.From, cmid, r.Data, bin, r.LCType,
				r.MentionAll, r.MentionPids, r.Receipt, r.ToIDs)
		}
		return b.String(), args
	}
	n := len(rows)
	ids, convs, froms, cmids, data, pids, tos := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	seqs, tss, lctypes := make([]int64, n), make([]int64, n), make([]int64, n)
	bins := make([][]byte, n)
	mentionAll, receipt := make([]bool, n), make([]bool, n)
	for i, r := range rows {
		ids[i], convs[i], seqs[i], tss[i], froms[i], cmids[i] = r.ID, r.ConvID, r.Seq, r.TS, r.From, r.ClientMsgID
		data[i], lctypes[i], mentionAll[i], pids[i], receipt[i] = r.Data, int64(r.LCType), r.MentionAll, r.MentionPids, r.Receipt
		tos[i] = r.ToIDs
		if len(r.Binary) > 0 {
			bins[i] = r.Binary
		}
	}
	table, args := s.derivedTable([]string{"id:text", "conv_id:text", "seq:bigint", "ts:bigint", "from_id:text",
		"client_msg_id:text", "data:text", "bin:bytea", "lctype:integer", "mention_all:boolean", "mention_pids:text",
		"receipt:boolean", "to_ids:text"}, ids, convs, seqs, tss, froms, cmids, data, bins, lctypes, mentionAll, pids, receipt, tos)
	return "INSERT INTO messages (" + cols + ") SELECT v.id, v.conv_id, v.seq, v.ts, v.from_id, " +
		"NULLIF(v.client_msg_id, ''), v.data, v.bin, v.lctype, v.mention_all, v.mention_pids, v.receipt, v.to_ids FROM " + table, args
}

// derivedTable returns a FROM item "... AS v" with the given columns
// ("name:postgres type"), whose rows are the elements of cols (slices of
// equal length, one per column), and its query arguments. On PostgreSQL it
// is unnest of one array literal per column, which PostgreSQL parses and
// plans much faster than a VALUES list of the same rows; on SQLite a
// VALUES list.
func (s *SQL) derivedTable(columns []string, cols ...any) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, len(cols))
	if s.pg {
		b.WriteString("unnest(")
		names := make([]string, len(columns))
		for i, c := range columns {
			name, typ, _ := strings.Cut(c, ":")
			names[i] = name
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("?::" + typ + "[]")
			args = append(args, pgdialect.Array(cols[i]))
		}
		b.WriteString(") AS v(" + strings.Join(names, ", ") + ")")
		return b.String(), args
	}
	b.WriteString("(SELECT ")
	for i, c := range columns {
		name, _, _ := strings.Cut(c, ":")
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "column%d AS %s", i+1, name)
	}
	b.WriteString(" FROM (VALUES ")
	vals := make([]reflect.Value, len(cols))
	for i, c := range cols {
		vals[i] = reflect.ValueOf(c)
	}
	for r := 0; r < vals[0].Len(); r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for i := range vals {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("?")
			args = append(args, vals[i].Index(r).Interface())
		}
		b.WriteString(")")
	}
	b.WriteString(")) AS v")
	return b.String(), args
}

func sortedKeys[V any](m map[cursorKey]V) []cursorKey {
	keys := make([]cursorKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b cursorKey) int {
		if c := strings.Compare(a.conv, b.conv); c != 0 {
			return c
		}
		return strings.Compare(a.client, b.client)
	})
	return keys
}

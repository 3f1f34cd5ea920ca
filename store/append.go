package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/leanhub/realtime"
)

// appendReq is one AppendMessages call waiting for the writer.
type appendReq struct {
	msgs []*realtime.Message     // validated copies; nil entries failed validation
	res  []realtime.AppendResult // filled by the writer
	err  error                   // infrastructure failure of the whole call
	done chan struct{}
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
		c.Binary = slices.Clone(m.Binary)
		req.msgs[i] = &c
		valid++
	}
	if valid == 0 {
		return req.res, nil
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		s.mu.RUnlock()
		return nil, ctx.Err()
	}
	s.mu.RUnlock()
	select {
	case <-req.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if req.err != nil {
		return nil, req.err
	}
	return req.res, nil
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
	return nil
}

// writer is the group-commit loop: it takes whatever appends are queued,
// waits a little for more when the last batch had several callers (up to
// the window, or until as many callers as last time have arrived), writes
// them in one transaction and answers them.
func (s *SQL) writer() {
	defer close(s.writerDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	prevCallers := 0
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
				s.commit(batch)
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
		if s.window > 0 && prevCallers > 1 && len(batch) < prevCallers && n < s.maxBatch {
			timer.Reset(s.window)
		wait:
			for len(batch) < prevCallers && n < s.maxBatch {
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
		prevCallers = len(batch)
		s.commit(batch)
	}
}

// item is one message of a batch.
type item struct {
	req *appendReq
	i   int // index in req.msgs
	msg *realtime.Message
}

// commit writes a batch and answers its callers. A failed transaction is
// retried (it may have lost a race on the de-duplication index against
// another process); infrastructure errors go to every caller.
func (s *SQL) commit(batch []*appendReq) {
	var items []item
	for _, r := range batch {
		for i, m := range r.msgs {
			if m != nil {
				items = append(items, item{r, i, m})
			}
		}
	}
	ctx := context.Background()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var results []realtime.AppendResult
		results, err = s.writeBatch(ctx, items)
		if err == nil {
			s.batches.Add(1)
			s.batchedMsgs.Add(int64(len(items)))
			for k, it := range items {
				it.req.res[it.i] = results[k]
			}
			break
		}
		s.log.Warn("store: append batch failed", "messages", len(items), "attempt", attempt+1, "err", err)
	}
	for _, r := range batch {
		if err != nil {
			r.err = fmt.Errorf("store: append: %w", err)
		}
		close(r.done)
	}
}

type convState struct {
	row     convRow
	changed bool
}

type cursorKey struct{ conv, client string }

type senderCursor struct {
	seq int64
	ts  int64
	mid string
}

// writeBatch writes items in one transaction and returns their results.
func (s *SQL) writeBatch(ctx context.Context, items []item) ([]realtime.AppendResult, error) {
	if !s.pg {
		s.wmu.Lock()
		defer s.wmu.Unlock()
	}
	results := make([]realtime.AppendResult, len(items))
	err := s.w.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		clear(results)
		// 1. Conversations, locked in id order on PostgreSQL.
		convIDs := make([]string, 0, len(items))
		for _, it := range items {
			convIDs = append(convIDs, it.msg.ConvID)
		}
		slices.Sort(convIDs)
		convIDs = slices.Compact(convIDs)
		var rows []convRow
		if err := tx.NewRaw("SELECT "+convCols+" FROM conversations c WHERE c.id IN (?) ORDER BY c.id"+s.forUpdate(),
			bun.In(convIDs)).Scan(ctx, &rows); err != nil {
			return fmt.Errorf("load conversations: %w", err)
		}
		convs := make(map[string]*convState, len(rows))
		for i := range rows {
			convs[rows[i].ID] = &convState{row: rows[i]}
		}
		// 2. Memberships of the senders.
		var pairs []cursorKey
		seenPair := map[cursorKey]bool{}
		for _, it := range items {
			c := convs[it.msg.ConvID]
			k := cursorKey{it.msg.ConvID, it.msg.From}
			if c != nil && !c.row.Transient && !seenPair[k] {
				seenPair[k] = true
				pairs = append(pairs, k)
			}
		}
		member := map[cursorKey]bool{}
		if len(pairs) > 0 {
			var q strings.Builder
			args := make([]any, 0, 2*len(pairs))
			q.WriteString("SELECT mb.conv_id, mb.client_id FROM (VALUES ")
			for i, p := range pairs {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?)")
				args = append(args, p.conv, p.client)
			}
			q.WriteString(") AS v JOIN members mb ON mb.conv_id = v.column1 AND mb.client_id = v.column2")
			var ms []struct {
				ConvID   string `bun:"conv_id"`
				ClientID string `bun:"client_id"`
			}
			if err := tx.NewRaw(q.String(), args...).Scan(ctx, &ms); err != nil {
				return fmt.Errorf("load members: %w", err)
			}
			for _, m := range ms {
				member[cursorKey{m.ConvID, m.ClientID}] = true
			}
		}
		// 3. Earlier copies of retried messages.
		type dedupKey struct{ from, dt string }
		stored := map[dedupKey]*realtime.Message{}
		var dq strings.Builder
		var dargs []any
		for _, it := range items {
			if it.msg.ClientMsgID == "" {
				continue
			}
			if len(dargs) > 0 {
				dq.WriteString(", ")
			}
			dq.WriteString("(?, ?)")
			dargs = append(dargs, it.msg.From, it.msg.ClientMsgID)
		}
		if len(dargs) > 0 {
			var ms []msgRow
			if err := tx.NewRaw("SELECT "+msgCols+" FROM (VALUES "+dq.String()+") AS v JOIN messages m "+
				"ON m.from_id = v.column1 AND m.client_msg_id = v.column2",
				dargs...).Scan(ctx, &ms); err != nil {
				return fmt.Errorf("load duplicates: %w", err)
			}
			for i := range ms {
				stored[dedupKey{ms[i].From, ms[i].ClientMsgID}] = ms[i].toMessage()
			}
		}
		// 4. Assign ids, seqs and timestamps.
		now := s.clock()
		nowMs := now.UnixMilli()
		inserts := make([]msgRow, 0, len(items))
		batchFirst := map[dedupKey]int{} // first item of the batch with that key
		senders := map[cursorKey]senderCursor{}
		mentions := map[cursorKey]int64{}
		for k, it := range items {
			m := it.msg
			c := convs[m.ConvID]
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
				if old := stored[dk]; old != nil {
					results[k] = realtime.AppendResult{Message: old, Duplicate: true}
					continue
				}
				if first, ok := batchFirst[dk]; ok {
					results[k] = realtime.AppendResult{Message: results[first].Message, Duplicate: true}
					continue
				}
			}
			if !c.row.Transient && !member[cursorKey{m.ConvID, m.From}] {
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
			c.changed = true
			results[k].Message = &out
			if m.ClientMsgID != "" {
				batchFirst[dk] = k
			}
			inserts = append(inserts, msgRow{
				ID: out.ID, ConvID: out.ConvID, Seq: out.Seq, TS: out.Timestamp, From: out.From,
				ClientMsgID: out.ClientMsgID, Data: out.Data, Binary: out.Binary, LCType: lcType(out.Data),
				MentionAll: out.MentionAll, MentionPids: encodePids(out.MentionPids), Receipt: out.Receipt,
			})
			if !c.row.Transient {
				senders[cursorKey{m.ConvID, m.From}] = senderCursor{out.Seq, out.Timestamp, out.ID}
				for _, p := range out.MentionPids {
					if p != m.From {
						mentions[cursorKey{m.ConvID, p}] = out.Seq
					}
				}
			}
		}
		if len(inserts) == 0 {
			return nil
		}
		// 5. One multi-row INSERT, then the updates below, all sent as one
		// multi-statement Exec (one round trip on PostgreSQL).
		stmts := []string{tx.NewInsert().Model(&inserts).String()}
		// 6. Conversation heads, one UPDATE ... FROM (VALUES ...).
		var b strings.Builder
		var args []any
		b.WriteString("UPDATE conversations SET seq = v.column2, last_ts = v.column3, last_mid = v.column4, " +
			"mention_all_seq = v.column5 FROM (VALUES ")
		first := true
		for _, id := range convIDs {
			c := convs[id]
			if c == nil || !c.changed {
				continue
			}
			if !first {
				b.WriteString(", ")
			}
			first = false
			b.WriteString("(?, ?, ?, ?, ?)")
			args = append(args, c.row.ID, c.row.Seq, c.row.LastTS, c.row.LastMID, c.row.MentionAllSeq)
		}
		b.WriteString(") AS v WHERE conversations.id = v.column1")
		stmts = append(stmts, tx.NewRaw(b.String(), args...).String())
		// 7. Senders' read and delivered cursors move to their message.
		if len(senders) > 0 {
			b.Reset()
			args = args[:0]
			b.WriteString("UPDATE members SET read_seq = v.column3, read_ts = v.column4, read_mid = v.column5, " +
				"delivered_ts = CASE WHEN members.delivered_ts < v.column4 THEN v.column4 ELSE members.delivered_ts END " +
				"FROM (VALUES ")
			first = true
			for _, k := range sortedKeys(senders) {
				c := senders[k]
				if !first {
					b.WriteString(", ")
				}
				first = false
				b.WriteString("(?, ?, ?, ?, ?)")
				args = append(args, k.conv, k.client, c.seq, c.ts, c.mid)
			}
			b.WriteString(") AS v WHERE members.conv_id = v.column1 AND members.client_id = v.column2")
			stmts = append(stmts, tx.NewRaw(b.String(), args...).String())
		}
		// 8. Mentioned members remember the newest mention.
		if len(mentions) > 0 {
			b.Reset()
			args = args[:0]
			b.WriteString("UPDATE members SET mention_seq = v.column3 FROM (VALUES ")
			first = true
			for _, k := range sortedKeys(mentions) {
				if !first {
					b.WriteString(", ")
				}
				first = false
				b.WriteString("(?, ?, ?)")
				args = append(args, k.conv, k.client, mentions[k])
			}
			b.WriteString(") AS v WHERE members.conv_id = v.column1 AND members.client_id = v.column2")
			stmts = append(stmts, tx.NewRaw(b.String(), args...).String())
		}
		// Through database/sql directly: the statements are formatted
		// already and must not be scanned for placeholders again.
		if _, err := tx.Tx.ExecContext(ctx, strings.Join(stmts, ";\n")); err != nil {
			return fmt.Errorf("write messages: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
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

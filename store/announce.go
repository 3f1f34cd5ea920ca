package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/cluster"
)

// Announcements are how several hub nodes on one PostgreSQL database hear
// of each other's changes without anything but the database
// (broker/pgnotify). Once Announce is called, the store NOTIFYs, in the
// transaction of each change, what other nodes must know of it: every
// stored message, every change of a conversation's members or attributes,
// every session revocation. PostgreSQL delivers a notification when (and
// only if) its transaction commits, so no change is ever written without
// being announced (the outbox pattern, with NOTIFY as the outbox).
//
// A notification's payload is "origin counter event": the announcing
// process, a counter that keeps payloads distinct (PostgreSQL folds
// identical payloads of one transaction into one), and the event as
// internal/cluster encodes it; or, for an event larger than a NOTIFY
// payload may be, "origin counter @id" naming a row of hub_events that
// holds it (EventData reads it; PruneEvents removes old ones).

// MaxNotifyPayload is the largest payload the store NOTIFYs; events
// larger than that go through the hub_events table (PostgreSQL refuses
// payloads of 8000 bytes or more).
const MaxNotifyPayload = 7900

type announcer struct {
	channel, origin string
	counter         atomic.Uint64
}

// Announce makes the store announce its changes on a NOTIFY channel, as
// origin (the announcing process's id, which its own listener skips).
// It is for PostgreSQL only.
func (s *SQL) Announce(channel, origin string) error {
	if !s.pg {
		return errors.New("store: announcements need PostgreSQL")
	}
	if channel == "" || origin == "" || strings.ContainsAny(origin, " \x00") {
		return fmt.Errorf("store: bad announcement channel %q or origin %q", channel, origin)
	}
	s.ann.Store(&announcer{channel: channel, origin: origin})
	return nil
}

// Announcing reports whether Announce was called.
func (s *SQL) Announcing() bool { return s.ann.Load() != nil }

// Notify publishes encoded events on channel as origin, in order, in one
// round trip (its own transaction).
func (s *SQL) Notify(ctx context.Context, channel, origin string, events [][]byte) error {
	if !s.pg {
		return errors.New("store: notifications need PostgreSQL")
	}
	if len(events) == 0 {
		return nil
	}
	a := s.ann.Load()
	if a == nil || a.channel != channel || a.origin != origin {
		a = &announcer{channel: channel, origin: origin}
	}
	stmts := s.notifyStmts(a, events)
	q := strings.Join(stmts, ";\n")
	if len(stmts) > 1 {
		q = "BEGIN;\n" + q + ";\nCOMMIT"
	}
	_, err := s.w.DB.ExecContext(ctx, q)
	return wrapInfra("notify", err)
}

// notifyStmts formats the statements that NOTIFY events in order: runs of
// small events as one pg_notify over an array, runs of large ones as an
// insert into hub_events that notifies the new ids.
func (s *SQL) notifyStmts(a *announcer, events [][]byte) []string {
	var stmts []string
	prefix := func() string { return a.origin + " " + strconv.FormatUint(a.counter.Add(1), 36) + " " }
	now := s.nowMs()
	for i := 0; i < len(events); {
		j := i
		large := len(events[i])+len(a.origin)+16 > MaxNotifyPayload
		var payloads []string
		for ; j < len(events) && (len(events[j])+len(a.origin)+16 > MaxNotifyPayload) == large; j++ {
			if large {
				payloads = append(payloads, string(events[j]))
			} else {
				payloads = append(payloads, prefix()+string(events[j]))
			}
		}
		if large {
			// The prefix is computed in SQL from the new ids; the counter
			// still keeps them distinct.
			stmts = append(stmts, s.w.NewRaw("WITH e AS (INSERT INTO hub_events (data, created_at) "+
				"SELECT x, ? FROM unnest(?::text[]) WITH ORDINALITY AS t(x, i) ORDER BY i RETURNING id) "+
				"SELECT pg_notify(?, ? || id || ' @' || id) FROM e ORDER BY id",
				now, pgdialect.Array(payloads), a.channel, a.origin+" ").String())
		} else {
			stmts = append(stmts, s.w.NewRaw("SELECT pg_notify(?, x) FROM unnest(?::text[]) WITH ORDINALITY AS t(x, i) ORDER BY i",
				a.channel, pgdialect.Array(payloads)).String())
		}
		i = j
	}
	return stmts
}

// announceTx announces events in the transaction tx, when announcing.
func (s *SQL) announceTx(ctx context.Context, tx bun.Tx, events ...*cluster.Event) error {
	a := s.ann.Load()
	if a == nil || len(events) == 0 {
		return nil
	}
	enc := make([][]byte, 0, len(events))
	for _, ev := range events {
		b, err := cluster.Encode(ev)
		if err != nil {
			return err
		}
		enc = append(enc, b)
	}
	for _, q := range s.notifyStmts(a, enc) {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("announce: %w", err)
		}
	}
	return nil
}

// convChanged announces that a conversation's members or attributes
// changed.
func (s *SQL) convChanged(ctx context.Context, tx bun.Tx, convID string) error {
	return s.announceTx(ctx, tx, &cluster.Event{Kind: cluster.KindConv, Conv: convID})
}

// messageEvents are the announcements of a batch's stored messages.
func messageEvents(stored []*realtime.Message) [][]byte {
	out := make([][]byte, 0, len(stored))
	for _, m := range stored {
		b, err := cluster.Encode(&cluster.Event{Kind: cluster.KindMessage, Conv: m.ConvID, Msg: cluster.FromMessage(m)})
		if err == nil {
			out = append(out, b)
		}
	}
	return out
}

// EventData returns the event stored in hub_events under id.
func (s *SQL) EventData(ctx context.Context, id int64) ([]byte, error) {
	var data string
	if err := s.w.NewRaw("SELECT data FROM hub_events WHERE id = ?", id).Scan(ctx, &data); err != nil {
		return nil, wrapInfra("read event", err)
	}
	return []byte(data), nil
}

// PruneEvents removes the hub_events rows created before before.
func (s *SQL) PruneEvents(ctx context.Context, before time.Time) error {
	_, err := s.w.NewRaw("DELETE FROM hub_events WHERE created_at < ?", before.UnixMilli()).Exec(ctx)
	return wrapInfra("prune events", err)
}

// Package pgnotify is a hub.Broker on PostgreSQL LISTEN/NOTIFY: the hubs
// of a deployment need nothing but the database they already share.
//
//	st, err := store.Open(ctx, "postgres://...", nil)
//	b, err := pgnotify.New(ctx, st, nil)
//	h, err := hub.New(st, &hub.Config{Broker: b, SessionSecret: key, ...})
//
// New turns on the store's announcements (store.SQL.Announce): stored
// messages, conversation changes and session revocations are NOTIFYed in
// the transaction that writes them, so a change is announced if and only
// if it is committed; nothing is written and then lost to the other
// nodes by a crash in between (the outbox pattern). The hub's other
// events (pushes, presence, kicks, live messages) are NOTIFYed by Publish
// in batches. PostgreSQL delivers notifications in commit order; an
// event over the 8000-byte payload limit is stored in hub_events and the
// notification names its row.
//
// Each node listens on one dedicated connection (bun's pgdriver
// Listener), outside the store's pool. A listener that loses its
// connection, or stops hearing its own pings, reconnects and the hub
// resynchronizes (notifications sent meanwhile are not kept by
// PostgreSQL).
package pgnotify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/store"
)

// Options tune a Broker. A nil *Options means defaults.
type Options struct {
	// Channel is the NOTIFY channel. Default "leanhub_" and the store's
	// schema (current_schema()), so deployments in different schemas of
	// one database do not hear each other.
	Channel string
	// PingInterval is how often a quiet listener checks its connection
	// by notifying itself; one that hears nothing for two intervals
	// reconnects. Default 5s.
	PingInterval time.Duration
	// KeepEvents is how long rows of hub_events (large events) are kept
	// for listeners to read. Default 10 minutes.
	KeepEvents time.Duration
}

// Broker is a hub.Broker on a PostgreSQL store.
type Broker struct {
	st      *store.SQL
	channel string
	origin  string
	ping    time.Duration
	keep    time.Duration

	listening atomic.Bool // a listener heard its own ping and is receiving
}

var _ hub.Broker = (*Broker)(nil)

// New returns a Broker on st's database and turns on st's announcements.
// st must be a PostgreSQL store, given to one hub.
func New(ctx context.Context, st *store.SQL, opts *Options) (*Broker, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 5 * time.Second
	}
	if o.KeepEvents <= 0 {
		o.KeepEvents = 10 * time.Minute
	}
	if o.Channel == "" {
		var schema string
		if err := st.DB().NewRaw("SELECT current_schema()").Scan(ctx, &schema); err != nil {
			return nil, fmt.Errorf("pgnotify: %w", err)
		}
		o.Channel = channelName("leanhub_" + schema)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	b := &Broker{st: st, channel: o.Channel, origin: hex.EncodeToString(id[:]), ping: o.PingInterval, keep: o.KeepEvents}
	if err := st.Announce(b.channel, b.origin); err != nil {
		return nil, fmt.Errorf("pgnotify: %w", err)
	}
	return b, nil
}

// channelName keeps an identifier within PostgreSQL's 63 bytes.
func channelName(s string) string {
	s = strings.ToLower(s)
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

// Channel is the NOTIFY channel the broker uses.
func (b *Broker) Channel() string { return b.channel }

// FedByStore tells the hub that stored messages, conversation changes and
// revocations reach the other nodes from the store's announcements: it
// does not publish them.
func (b *Broker) FedByStore() bool { return true }

// Publish implements hub.Broker: one round trip for the batch.
func (b *Broker) Publish(ctx context.Context, events []hub.BrokerEvent) error {
	data := make([][]byte, 0, len(events))
	for _, ev := range events {
		if !ev.Kind.StoreAnnounced() {
			data = append(data, ev.Data)
		}
	}
	return b.st.Notify(ctx, b.channel, b.origin, data)
}

var pingData = []byte("ping")

// subscribePing is how often a listener that has not heard its first ping
// pings again.
const subscribePing = 100 * time.Millisecond

// Connected reports whether the broker's listener is receiving (for a
// readiness probe): false before it first hears its own ping and while it
// reconnects.
func (b *Broker) Connected() bool { return b.listening.Load() }

// Run implements hub.Broker.
func (b *Broker) Run(ctx context.Context, r hub.BrokerReceiver) error {
	prune := time.Now()
	for {
		err := b.listen(ctx, r, &prune)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Reconnect: the hub hears Subscribed again and resynchronizes.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		_ = err
	}
}

// listen runs one listener connection until it fails.
func (b *Broker) listen(ctx context.Context, r hub.BrokerReceiver, prune *time.Time) error {
	ln := pgdriver.NewListener(b.st.DB())
	// Closing the listener is what interrupts a read in progress.
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer func() {
		b.listening.Store(false)
		stop()
		ln.Close()
	}()
	if err := ln.Listen(ctx, b.channel); err != nil {
		return err
	}
	// LISTEN takes effect some time after Listen returns: the listener is
	// subscribed once it hears its own ping. What arrives before is
	// handed over after Subscribed.
	var early [][]byte
	subscribed := false
	quiet := 0
	if err := b.st.Notify(ctx, b.channel, b.origin, [][]byte{pingData}); err != nil {
		return err
	}
	for {
		// Until the first ping comes back, ping often: the LISTEN may
		// not have taken effect when the first one was sent.
		wait := b.ping
		if !subscribed {
			wait = subscribePing
		}
		_, payload, err := ln.ReceiveTimeout(ctx, wait)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
			quiet++
			if subscribed && quiet > 2 || !subscribed && quiet > int(b.ping/subscribePing)*2 {
				return errors.New("pgnotify: the listener hears nothing, not even its pings")
			}
			if err := b.st.Notify(ctx, b.channel, b.origin, [][]byte{pingData}); err != nil {
				return err
			}
			if time.Since(*prune) > time.Minute {
				*prune = time.Now()
				_ = b.st.PruneEvents(ctx, time.Now().Add(-b.keep))
			}
			continue
		}
		quiet = 0
		origin, rest, _ := strings.Cut(payload, " ")
		_, data, _ := strings.Cut(rest, " ")
		if data == string(pingData) && origin != b.origin {
			continue // another node's ping
		}
		if origin == b.origin {
			if data == string(pingData) && !subscribed {
				subscribed = true
				b.listening.Store(true)
				r.Subscribed()
				for _, d := range early {
					r.Receive(d)
				}
				early = nil
			}
			continue
		}
		event := []byte(data)
		if ref, ok := strings.CutPrefix(data, "@"); ok {
			id, err := strconv.ParseInt(ref, 10, 64)
			if err != nil {
				continue
			}
			if event, err = b.st.EventData(ctx, id); err != nil {
				r.Lost("pgnotify: a large event could not be read: " + err.Error())
				continue
			}
		}
		if !subscribed {
			early = append(early, event)
			continue
		}
		r.Receive(event)
	}
}

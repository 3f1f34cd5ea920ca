// Package nats is a hub.Broker on NATS core publish/subscribe: the hubs
// of a deployment publish their events on one subject and each receives
// the others'.
//
//	b, err := nats.Connect("nats://127.0.0.1:4222", nil)
//	h, err := hub.New(st, &hub.Config{Broker: b, SessionSecret: key, ...})
//	defer b.Close() // after h.Shutdown
//
// What it guarantees: events of one node reach every other node in the
// order they were published, while the connection holds. NATS core keeps
// nothing for a subscriber that is away, so when the connection drops and
// comes back (the client reconnects by itself, forever) the hub is told
// to resynchronize (hub.BrokerReceiver.Subscribed), and so it is when a
// node falls too far behind (a NATS slow consumer: events were dropped).
// Events published while the connection is down are buffered by the
// client (nats.go's reconnect buffer, 8 MiB by default) and sent after it
// comes back. An event larger than the server's max_payload (1 MiB by
// default) is refused and logged.
package nats

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/leanhub/realtime/hub"
)

// DefaultSubject is the subject the hubs publish on when Options.Subject
// is empty.
const DefaultSubject = "leanhub.events"

// Options tune a Broker. A nil *Options means defaults.
type Options struct {
	// Subject carries the deployment's events; deployments sharing a NATS
	// server need one each. Default DefaultSubject.
	Subject string
	// PendingMessages and PendingBytes bound the events received and not
	// yet handed to the hub; beyond them NATS drops events (a slow
	// consumer) and the hub resynchronizes. Default 65536 and 64 MiB.
	PendingMessages int
	PendingBytes    int
}

// Broker is a hub.Broker on a NATS connection.
type Broker struct {
	nc      *nats.Conn
	own     bool // Connect made nc: Close closes it
	subject string
	origin  []byte // "id " prefixed to every event, to skip one's own
	pendMsg int
	pendB   int

	mu sync.Mutex
	r  hub.BrokerReceiver // the running Run's receiver
}

var _ hub.Broker = (*Broker)(nil)

// Connect connects to the NATS server(s) at url (comma-separated) with
// reconnection forever, and returns a Broker on that connection.
func Connect(url string, opts *Options, natsOpts ...nats.Option) (*Broker, error) {
	b := newBroker(opts)
	all := append([]nats.Option{
		nats.Name("leanhub " + string(bytes.TrimSpace(b.origin))),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
	}, natsOpts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		return nil, err
	}
	b.nc, b.own = nc, true
	b.watch()
	return b, nil
}

// New returns a Broker on an existing connection. It sets the
// connection's reconnect and error handlers.
func New(nc *nats.Conn, opts *Options) *Broker {
	b := newBroker(opts)
	b.nc = nc
	b.watch()
	return b
}

func newBroker(opts *Options) *Broker {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Subject == "" {
		o.Subject = DefaultSubject
	}
	if o.PendingMessages <= 0 {
		o.PendingMessages = 1 << 16
	}
	if o.PendingBytes <= 0 {
		o.PendingBytes = 64 << 20
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &Broker{subject: o.Subject, origin: []byte(hex.EncodeToString(id[:]) + " "),
		pendMsg: o.PendingMessages, pendB: o.PendingBytes}
}

// watch turns the connection's reconnections and slow-consumer errors into
// resynchronizations of the hub.
func (b *Broker) watch() {
	b.nc.SetReconnectHandler(func(*nats.Conn) {
		if r := b.receiver(); r != nil {
			r.Subscribed()
		}
	})
	b.nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if r := b.receiver(); r != nil && errors.Is(err, nats.ErrSlowConsumer) {
			r.Lost("NATS slow consumer: events were dropped")
		}
	})
}

func (b *Broker) receiver() hub.BrokerReceiver {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.r
}

// Publish implements hub.Broker. NATS buffers and flushes by itself;
// Publish fails only for a closed connection or an oversized event.
func (b *Broker) Publish(ctx context.Context, events []hub.BrokerEvent) error {
	var errs []error
	for _, ev := range events {
		data := make([]byte, 0, len(b.origin)+len(ev.Data))
		data = append(append(data, b.origin...), ev.Data...)
		if err := b.nc.Publish(b.subject, data); err != nil {
			errs = append(errs, err)
			if errors.Is(err, nats.ErrConnectionClosed) {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// Run implements hub.Broker.
func (b *Broker) Run(ctx context.Context, r hub.BrokerReceiver) error {
	b.mu.Lock()
	if b.r != nil {
		b.mu.Unlock()
		return errors.New("broker/nats: Run is already running")
	}
	b.r = r
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.r = nil
		b.mu.Unlock()
	}()
	// One subscription: its callback runs on one goroutine, in order.
	sub, err := b.nc.Subscribe(b.subject, func(m *nats.Msg) {
		if bytes.HasPrefix(m.Data, b.origin) {
			return // our own
		}
		if i := bytes.IndexByte(m.Data, ' '); i >= 0 {
			r.Receive(m.Data[i+1:])
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(b.pendMsg, b.pendB); err != nil {
		return err
	}
	// Once the server has the subscription, nothing published from now
	// on is missed.
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = b.nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		return err
	}
	r.Subscribed()
	<-ctx.Done()
	return ctx.Err()
}

// Connected reports whether the NATS connection is up (for a readiness
// probe; while it reconnects, events are buffered by the client).
func (b *Broker) Connected() bool { return b.nc.IsConnected() }

// Close closes the connection Connect made (after the hub shut down).
func (b *Broker) Close() {
	if b.own {
		b.nc.Close()
	}
}

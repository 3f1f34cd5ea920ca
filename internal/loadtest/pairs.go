package loadtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/leanhub/realtime/internal/wire"
)

// PairsResult holds the figures of the pairs scenario.
type PairsResult struct {
	Pairs           int    `json:"pairs"`
	MessagesPerPair int    `json:"messages_per_pair"`
	Mode            string `json:"mode"`
	Window          int    `json:"window_per_client"`

	Sent       int64 `json:"sent"`
	Acked      int64 `json:"acked"`
	Deliveries int64 `json:"deliveries"`
	// Seconds is from the first send to the last ack.
	Seconds float64 `json:"seconds"`
	// PersistedPerSec is acked (hence stored) messages per second.
	PersistedPerSec  float64        `json:"persisted_per_sec"`
	DeliveriesPerSec float64        `json:"deliveries_per_sec"`
	Latency          LatencySummary `json:"latency"`
	AckLatency       LatencySummary `json:"ack_latency"`
	Check            ExactlyOnce    `json:"exactly_once"`
	Drops            int64          `json:"drops"`
	Reconnects       int64          `json:"reconnects"`
}

// Summary is the human report.
func (p *PairsResult) Summary() string {
	return fmt.Sprintf(`pairs: %d 1:1 conversations x %d messages (%s, window %d per client)
  sent %d, acked %d in %.2fs: %.0f persisted msgs/s, %.0f deliveries/s
  send->receive %s
  send->ack     %s
  exactly-once: %s
  sockets dropped %d, re-logged in %d`,
		p.Pairs, p.MessagesPerPair, p.Mode, p.Window, p.Sent, p.Acked, p.Seconds, p.PersistedPerSec, p.DeliveriesPerSec,
		p.Latency, p.AckLatency, p.Check.String(), p.Drops, p.Reconnects)
}

// In pairs, client 2p (side a) sends the even sequence numbers of pair p
// and client 2p+1 (side b) the odd ones; message seq of pair p is slot
// p*K+seq. "concurrent": both sides send their share at once, each keeping
// at most Window sends waiting for their ack (1: the app awaits each send,
// as SDK apps do). "alternate": a ping-pong, each side sending its next
// message when it receives the other's.
func runPairs(ctx context.Context, e *env) error {
	cfg := e.cfg
	P, K := cfg.Pairs, cfg.PairMessages
	out := &PairsResult{Pairs: P, MessagesPerPair: K, Mode: cfg.PairsMode, Window: cfg.Window}
	e.res.Pairs = out
	run := cfg.Prefix
	share := func(side int) int { return (K - side + 1) / 2 } // messages side 0/1 sends
	sl := newSlots(P*K, 1, nil)
	var lat Latencies
	n := 2 * P
	recs := make([]*receiver, n)
	names := make([]string, n)
	turns := make([]chan int64, n) // alternate: the seq the client may send next
	for i := range recs {
		recs[i] = &receiver{counts: make([]uint8, share(1-i%2)), lat: lat.NewShard()}
		names[i] = fmt.Sprintf("%s-p%05d%c", cfg.Prefix, i/2, 'a'+rune(i%2))
		turns[i] = make(chan int64, K)
	}
	cids := make([]string, P)
	// slotOf maps a seq received by client i to its count index and slot.
	slotOf := func(i int, seq int64) (int, int, bool) {
		if seq < 0 || seq >= int64(K) || int(seq%2) != 1-i%2 {
			return 0, 0, false
		}
		return int(seq / 2), (i/2)*K + int(seq), true
	}
	abort := make(chan struct{})
	var abortOnce sync.Once
	var abortErr error
	stop := func(err error) { abortOnce.Do(func() { abortErr = err; close(abort) }) }

	opts := e.clientOptions()
	opts.Ack, opts.Read, opts.Reconnect = true, !cfg.NoRead, cfg.Reconnect
	opts.OnMessage = func(c *Client, d *wire.DirectCommand, at time.Time) {
		seq, sent, ok := ParseBody(d.GetMsg(), run)
		idx, slot, ok2 := slotOf(c.Index, seq)
		if !ok || !ok2 {
			sl.foreign.Add(1)
			return
		}
		sl.live(recs[c.Index], idx, slot, d.GetId(), d.GetTimestamp(), sent, at)
		if cfg.PairsMode == "alternate" && seq+1 < int64(K) {
			turns[c.Index] <- seq + 1
		}
	}
	opts.OnDead = func(c *Client, err error) { stop(fmt.Errorf("client %s lost its socket: %v", c.ID, err)) }
	opts.OnReconnect = func(c *Client) {
		err := catchUp(c, cids[c.Index/2], recs[c.Index], run, func(seq int64) (int, int, bool) { return slotOf(c.Index, seq) }, sl)
		if err != nil {
			e.res.errs.Add("history:"+errorKey(err), c.ID+": "+err.Error())
		}
	}
	clients := make([]*Client, n)
	for i := range clients {
		clients[i] = NewClient(names[i], i, opts)
	}
	defer closeAll(clients)

	if err := e.loginAll(ctx, "login", clients); err != nil {
		return err
	}
	var created atomic.Int64
	if err := e.phase(ctx, "create-conversations", func() string { return fmt.Sprintf("%d of %d created", created.Load(), P) },
		func(ctx context.Context) error {
			return parallel(ctx, P, cfg.Concurrency, &created, func(ctx context.Context, p int) error {
				cid, err := clients[2*p].StartConversation(ctx, "leanload pair "+run, []string{names[2*p+1]})
				cids[p] = cid
				return err
			})
		}); err != nil {
		return err
	}

	var ackLat Latencies
	var sent atomic.Int64
	progress := func() string {
		return fmt.Sprintf("%d of %d sent, %d acked, %d delivered", sent.Load(), P*K, sl.acked.Load(), sl.deliveries.Load())
	}
	err := e.phase(ctx, "send", progress, func(ctx context.Context) error {
		var wg sync.WaitGroup
		for i, c := range clients {
			side := i % 2
			wg.Go(func() {
				shard := ackLat.NewShard()
				var mu sync.Mutex
				var inner sync.WaitGroup
				defer inner.Wait()
				window := make(chan struct{}, cfg.Window)
				for k := range share(side) {
					seq := int64(2*k + side)
					if cfg.PairsMode == "alternate" && seq > 0 {
						select {
						case s := <-turns[i]:
							seq = s
						case <-ctx.Done():
							return
						case <-abort:
							return
						}
					}
					select {
					case window <- struct{}{}:
					case <-ctx.Done():
						return
					case <-abort:
						return
					}
					slot := (i/2)*K + int(seq)
					now := time.Now().UnixNano()
					sl.sent(slot, now)
					sent.Add(1)
					inner.Go(func() {
						defer func() { <-window }()
						res, err := c.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cids[i/2]), Msg: proto.String(Body(run, seq, now, cfg.BodySize))}, false)
						at := time.Now()
						if err != nil {
							key := errorKey(err)
							e.res.errs.Add("send:"+key, err.Error())
							sl.failed(slot, key != "timeout" && key != "closed" && key != "other")
							return
						}
						mu.Lock()
						shard.Add(at.Sub(time.Unix(0, now)))
						mu.Unlock()
						sl.ack(slot, res.ID, at.UnixNano())
					})
				}
			})
		}
		wg.Wait()
		select {
		case <-sl.allDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-abort:
			return abortErr
		}
	})
	// Late copies (duplicates) still count; after a failure, so do the
	// deliveries still in flight.
	time.Sleep(cfg.Grace)
	out.Drops, out.Reconnects = dropStats(clients)
	closeAndWait(clients, 10*time.Second)
	out.Sent = sent.Load()
	out.Acked = sl.acked.Load()
	out.Deliveries = sl.deliveries.Load()
	first := sl.firstSend.Load()
	if la := sl.lastAck.Load(); first > 0 && la > first {
		out.Seconds = time.Duration(la - first).Seconds()
		out.PersistedPerSec = rate(out.Acked, time.Duration(la-first))
	}
	if ld := sl.lastDelivery.Load(); first > 0 && ld > first {
		out.DeliveriesPerSec = rate(out.Deliveries, time.Duration(ld-first))
	}
	out.Latency = lat.Summary()
	out.AckLatency = ackLat.Summary()
	sl.check(&out.Check, names, recs, func(r, idx int) int { return (r/2)*K + 2*idx + (1 - r%2) })
	if out.Check.Failed() {
		note := ""
		if err != nil && out.Check.Missing > 0 {
			note = " (the run stopped early: missing includes messages still in flight when it stopped)"
		}
		e.fail("exactly-once check failed%s: %s", note, out.Check.String())
	}
	return err
}

package loadtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/leanhub/realtime/internal/wire"
)

// FanoutResult holds the figures of the fanout scenario.
type FanoutResult struct {
	Members  int     `json:"members"`
	Messages int     `json:"messages"`
	Window   int     `json:"window"`
	Rate     float64 `json:"rate_target"`
	BodySize int     `json:"body_bytes"`

	Sent       int64 `json:"sent"`
	Acked      int64 `json:"acked"`
	Deliveries int64 `json:"deliveries"`
	Expected   int64 `json:"expected_deliveries"`
	// Seconds is from the first send to the last delivery.
	Seconds          float64        `json:"seconds"`
	DeliveriesPerSec float64        `json:"deliveries_per_sec"`
	AckedPerSec      float64        `json:"acked_per_sec"`
	SendPerSec       float64        `json:"send_per_sec"`
	Latency          LatencySummary `json:"latency"`
	AckLatency       LatencySummary `json:"ack_latency"`
	Check            ExactlyOnce    `json:"exactly_once"`
	// Drops are sockets lost during the run; Reconnects the re-logins
	// after them (-reconnect).
	Drops      int64 `json:"drops"`
	Reconnects int64 `json:"reconnects"`
}

// Summary is the human report.
func (f *FanoutResult) Summary() string {
	return fmt.Sprintf(`fanout: 1 sender -> %d members x %d messages (%d B bodies, window %d, rate %s)
  sent %d, acked %d (%.0f acked/s, sends at %.0f/s)
  deliveries %d of %d expected in %.2fs: %.0f deliveries/s
  send->receive %s
  send->ack     %s
  exactly-once: %s
  sockets dropped %d, re-logged in %d`,
		f.Members, f.Messages, f.BodySize, f.Window, rateText(f.Rate), f.Sent, f.Acked, f.AckedPerSec, f.SendPerSec,
		f.Deliveries, f.Expected, f.Seconds, f.DeliveriesPerSec, f.Latency, f.AckLatency, f.Check.String(), f.Drops, f.Reconnects)
}

func rateText(r float64) string {
	if r <= 0 {
		return "as fast as the window allows"
	}
	return fmt.Sprintf("%.0f msgs/s", r)
}

// memberChunk is how many members one conv/start or conv/add carries.
const memberChunk = 500

// createGroup creates a conversation of owner with members through the
// protocol: conv/start (unique) with the first chunk, conv/add for the
// rest.
func createGroup(ctx context.Context, owner *Client, name string, members []string) (string, error) {
	first := members[:min(len(members), memberChunk-1)]
	cid, err := owner.StartConversation(ctx, name, first)
	if err != nil {
		return "", fmt.Errorf("conv/start: %w", err)
	}
	for i := len(first); i < len(members); i += memberChunk {
		if err := owner.AddMembers(ctx, cid, members[i:min(i+memberChunk, len(members))]); err != nil {
			return "", fmt.Errorf("conv/add: %w", err)
		}
	}
	return cid, nil
}

func runFanout(ctx context.Context, e *env) error {
	cfg := e.cfg
	n, m := cfg.Messages, cfg.Members
	out := &FanoutResult{Members: m, Messages: n, Window: cfg.Window, Rate: cfg.Rate, BodySize: cfg.BodySize}
	e.res.Fanout = out
	run := cfg.Prefix

	window := make(chan struct{}, cfg.Window)
	sl := newSlots(n, m, func(int) { <-window })
	var lat Latencies
	recs := make([]*receiver, m)
	names := make([]string, m)
	for i := range recs {
		recs[i] = &receiver{counts: make([]uint8, n), lat: lat.NewShard()}
	}
	abort := make(chan struct{})
	var abortOnce sync.Once
	var abortErr error
	stop := func(err error) { abortOnce.Do(func() { abortErr = err; close(abort) }) }

	var cid string
	ropts := e.clientOptions()
	ropts.Ack, ropts.Read, ropts.Reconnect = true, !cfg.NoRead, cfg.Reconnect
	ropts.OnMessage = func(c *Client, d *wire.DirectCommand, at time.Time) {
		seq, sent, ok := ParseBody(d.GetMsg(), run)
		if !ok || seq < 0 || seq >= int64(n) {
			sl.foreign.Add(1)
			return
		}
		sl.live(recs[c.Index], int(seq), int(seq), d.GetId(), d.GetTimestamp(), sent, at)
		if cfg.onDelivery != nil {
			cfg.onDelivery(c, seq)
		}
	}
	ropts.OnDead = func(c *Client, err error) { stop(fmt.Errorf("receiver %s lost its socket: %v", c.ID, err)) }
	ropts.OnReconnect = func(c *Client) {
		if err := catchUp(c, cid, recs[c.Index], run, func(seq int64) (int, int, bool) {
			return int(seq), int(seq), seq >= 0 && seq < int64(n)
		}, sl); err != nil {
			e.res.errs.Add("history:"+errorKey(err), c.ID+": "+err.Error())
		}
	}
	receivers := make([]*Client, m)
	for i := range receivers {
		names[i] = fmt.Sprintf("%s-r%05d", cfg.Prefix, i)
		receivers[i] = NewClient(names[i], i, ropts)
	}
	sopts := e.clientOptions()
	sopts.OnDead = func(c *Client, err error) { stop(fmt.Errorf("sender lost its socket: %v", err)) }
	sopts.Reconnect = cfg.Reconnect
	sender := NewClient(cfg.Prefix+"-s", -1, sopts)
	defer func() {
		sender.Close()
		closeAll(receivers)
	}()

	if err := e.loginAll(ctx, "login-sender", []*Client{sender}); err != nil {
		return err
	}
	if err := e.phase(ctx, "create-conversation", nil, func(ctx context.Context) error {
		var err error
		cid, err = createGroup(ctx, sender, "leanload fanout "+run, names)
		return err
	}); err != nil {
		return err
	}
	if err := e.loginAll(ctx, "login-receivers", receivers); err != nil {
		return err
	}

	var ackLat Latencies
	ackShardMu := sync.Mutex{}
	ackShard := ackLat.NewShard()
	var sent atomic.Int64
	progress := func() string {
		return fmt.Sprintf("%d of %d messages sent, %d acked, %d of %d deliveries, %d messages complete",
			sent.Load(), n, sl.acked.Load(), sl.deliveries.Load(), int64(n)*int64(m), sl.nFinished.Load())
	}
	err := e.phase(ctx, "send", progress, func(ctx context.Context) error {
		start := time.Now()
		var wg sync.WaitGroup
		defer wg.Wait()
		for seq := range n {
			if cfg.Rate > 0 {
				if d := time.Until(start.Add(time.Duration(float64(seq) / cfg.Rate * float64(time.Second)))); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return ctx.Err()
					case <-abort:
						return abortErr
					}
				}
			}
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			case <-abort:
				return abortErr
			}
			now := time.Now().UnixNano()
			sl.sent(seq, now)
			sent.Add(1)
			wg.Go(func() {
				res, err := sender.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(Body(run, int64(seq), now, cfg.BodySize))}, false)
				at := time.Now()
				if err != nil {
					key := errorKey(err)
					e.res.errs.Add("send:"+key, err.Error())
					sl.failed(seq, key != "timeout" && key != "closed" && key != "other")
					return
				}
				ackShardMu.Lock()
				ackShard.Add(at.Sub(time.Unix(0, now)))
				ackShardMu.Unlock()
				sl.ack(seq, res.ID, at.UnixNano())
			})
		}
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

	out.Drops, out.Reconnects = dropStats(append(receivers, sender))
	closeAndWait(append(receivers, sender), 10*time.Second)
	out.Sent = sent.Load()
	out.Acked = sl.acked.Load()
	out.Deliveries = sl.deliveries.Load()
	out.Expected = out.Acked * int64(m)
	first, last := sl.firstSend.Load(), sl.lastDelivery.Load()
	if first > 0 && last > first {
		d := time.Duration(last - first)
		out.Seconds = d.Seconds()
		out.DeliveriesPerSec = rate(out.Deliveries, d)
	}
	if la := sl.lastAck.Load(); first > 0 && la > first {
		out.AckedPerSec = rate(out.Acked, time.Duration(la-first))
	}
	if el := e.res.Phases["send"]; el > 0 {
		out.SendPerSec = float64(out.Sent) / el
	}
	out.Latency = lat.Summary()
	out.AckLatency = ackLat.Summary()
	sl.check(&out.Check, names, recs, func(_, idx int) int { return idx })
	if out.Check.Failed() {
		note := ""
		if err != nil && out.Check.Missing > 0 {
			note = " (the run stopped early: missing includes messages still in flight when it stopped)"
		}
		e.fail("exactly-once check failed%s: %s", note, out.Check.String())
	}
	return err
}

// catchUp pulls what a reconnected receiver missed in cid from history and
// records it; slotOf maps a body's seq to (count index, slot).
func catchUp(c *Client, cid string, r *receiver, run string, slotOf func(seq int64) (idx, slot int, ok bool), sl *slots) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r.mu.Lock()
	after := r.lastTS
	r.mu.Unlock()
	const page = 1000
	for {
		logs, err := c.History(ctx, cid, after, page)
		if err != nil {
			return err
		}
		for _, l := range logs {
			after = max(after, l.GetTimestamp())
			seq, _, ok := ParseBody(l.GetData(), run)
			if !ok {
				continue
			}
			if idx, slot, ok := slotOf(seq); ok {
				sl.history(r, idx, slot, l.GetMsgId(), l.GetTimestamp())
			}
		}
		if len(logs) < page {
			return nil
		}
		if ctx.Err() != nil {
			return errors.New("history catch-up timed out")
		}
	}
}

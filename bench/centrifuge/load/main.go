// Command load is leanload's fanout scenario for centrifuge: one publisher
// and M subscribers of one channel, each a client on its own websocket
// speaking centrifuge's protobuf protocol (-client raw, the default: a bare
// websocket and the protocol package, as light as leanload's clients; or
// -client centrifuge-go, the official Go client, whose per-client machinery
// costs the machine noticeably more), N publications of ~150 B whose body holds
// the send time. The publisher keeps at most -window publications in
// flight, a publication being in flight until its publish reply came and
// every subscriber has it, or publishes at -rate. It reports the same
// figures under the same JSON names as leanload's fanout: deliveries/s from
// the first publish to the last delivery, acked publishes/s, send->receive
// latency percentiles, and an exactly-once check.
//
//	go run ./load -ws ws://127.0.0.1:8000/connection/websocket -members 1000 -messages 2000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	centrifuge "github.com/centrifugal/centrifuge-go"
)

type latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// percentile is the nearest-rank q-quantile of sorted (as leanload).
func percentile(sorted []time.Duration, q float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if q >= 1 {
		return sorted[n-1]
	}
	return sorted[max(int(math.Ceil(q*float64(n))), 1)-1]
}

func summarize(d []time.Duration) latency {
	if len(d) == 0 {
		return latency{}
	}
	slices.Sort(d)
	var sum float64
	for _, x := range d {
		sum += float64(x)
	}
	ms := func(x time.Duration) float64 { return float64(x) / 1e6 }
	return latency{Count: len(d), P50: ms(percentile(d, .5)), P90: ms(percentile(d, .9)), P99: ms(percentile(d, .99)),
		Max: ms(d[len(d)-1]), Mean: sum / float64(len(d)) / 1e6}
}

type result struct {
	Scenario         string         `json:"scenario"`
	Client           string         `json:"client"`
	Members          int            `json:"members"`
	Messages         int            `json:"messages"`
	Window           int            `json:"window"`
	Rate             float64        `json:"rate_target"`
	BodySize         int            `json:"body_bytes"`
	Sent             int64          `json:"sent"`
	Acked            int64          `json:"acked"`
	Deliveries       int64          `json:"deliveries"`
	Expected         int64          `json:"expected_deliveries"`
	Seconds          float64        `json:"seconds"`
	DeliveriesPerSec float64        `json:"deliveries_per_sec"`
	AckedPerSec      float64        `json:"acked_per_sec"`
	Latency          latency        `json:"latency"`
	AckLatency       latency        `json:"ack_latency"`
	Missing          int64          `json:"missing"`
	Duplicates       int64          `json:"duplicates"`
	Errors           map[string]int `json:"errors"`
	OK               bool           `json:"ok"`
	Failures         []string       `json:"failures"`
}

func body(run string, seq, sent int64, size int) []byte {
	s := `{"_lctype":-1,"_lctext":"ll1 ` + run + " " + strconv.FormatInt(seq, 10) + " " + strconv.FormatInt(sent, 10) + " "
	return []byte(s + strings.Repeat("x", max(0, size-len(s)-2)) + `"}`)
}

func parse(b []byte, run string) (seq, sent int64, ok bool) {
	s := string(b)
	i := strings.Index(s, `"_lctext":"ll1 `)
	if i < 0 {
		return 0, 0, false
	}
	f := strings.SplitN(s[i+len(`"_lctext":"ll1 `):], " ", 4)
	if len(f) < 4 || f[0] != run {
		return 0, 0, false
	}
	seq, e1 := strconv.ParseInt(f[1], 10, 64)
	sent, e2 := strconv.ParseInt(f[2], 10, 64)
	return seq, sent, e1 == nil && e2 == nil
}

func main() {
	ws := flag.String("ws", "", "centrifuge websocket URL (ws://host:port/connection/websocket)")
	members := flag.Int("members", 1000, "subscribers")
	messages := flag.Int("messages", 2000, "publications")
	window := flag.Int("window", 256, "publications in flight (until acked and delivered to every subscriber)")
	rate := flag.Float64("rate", 0, "publications per second (0: as fast as the window allows)")
	size := flag.Int("body", 150, "publication size in bytes")
	concurrency := flag.Int("concurrency", 64, "parallel connects")
	timeout := flag.Duration("phase-timeout", 5*time.Minute, "bound of every phase")
	asJSON := flag.Bool("json", false, "print one JSON object on stdout (summary on stderr)")
	client := flag.String("client", "raw", "raw (centrifuge's protobuf protocol on a bare websocket, light) or centrifuge-go (the official Go client, heavier)")
	flag.Parse()
	if *client != "raw" && *client != "centrifuge-go" {
		fmt.Fprintln(os.Stderr, "load: -client raw or centrifuge-go")
		os.Exit(2)
	}
	if *ws == "" {
		fmt.Fprintln(os.Stderr, "load: -ws is required")
		os.Exit(2)
	}
	r := run(*client, *ws, *members, *messages, *window, *rate, *size, *concurrency, *timeout)
	sum := fmt.Sprintf(`centrifuge fanout (%s client): 1 publisher -> %d subscribers x %d publications (%d B, window %d, rate %v)
  sent %d, acked %d (%.0f acked/s)
  deliveries %d of %d expected in %.2fs: %.0f deliveries/s
  send->receive p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (%d samples)
  exactly-once: missing %d, duplicates %d; errors %v; ok %v %v`,
		r.Client, r.Members, r.Messages, r.BodySize, r.Window, r.Rate, r.Sent, r.Acked, r.AckedPerSec, r.Deliveries, r.Expected, r.Seconds,
		r.DeliveriesPerSec, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max, r.Latency.Count, r.Missing, r.Duplicates, r.Errors, r.OK, r.Failures)
	if *asJSON {
		fmt.Fprintln(os.Stderr, sum)
		json.NewEncoder(os.Stdout).Encode(r)
	} else {
		fmt.Println(sum)
	}
	if !r.OK {
		os.Exit(1)
	}
}

type sub struct {
	mu     sync.Mutex
	counts []uint8
	lat    []time.Duration
}

func run(client, ws string, m, n, window int, rate float64, size, concurrency int, timeout time.Duration) *result {
	r := &result{Scenario: "fanout", Client: client, Members: m, Messages: n, Window: window, Rate: rate, BodySize: size, Errors: map[string]int{}}
	var errMu sync.Mutex
	addErr := func(k string) { errMu.Lock(); r.Errors[k]++; errMu.Unlock() }
	fail := func(format string, a ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, a...)) }
	defer func() { r.OK = len(r.Failures) == 0 }()
	runID := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	channel := "bench-" + runID

	remaining := make([]atomic.Int32, n)
	for i := range remaining {
		remaining[i].Store(int32(m) + 1)
	}
	slots := make(chan struct{}, window)
	var finished atomic.Int64
	allDone := make(chan struct{})
	step := func(seq int) {
		if remaining[seq].Add(-1) == 0 {
			<-slots
			if finished.Add(1) == int64(n) {
				close(allDone)
			}
		}
	}
	var deliveries, dups, lastDelivery, firstSend, lastAck atomic.Int64
	subs := make([]*sub, m)
	// deliver records a publication received by subscriber s.
	deliver := func(s *sub, data []byte, at time.Time) {
		seq, sent, ok := parse(data, runID)
		if !ok || seq < 0 || seq >= int64(n) {
			return
		}
		s.mu.Lock()
		c := s.counts[seq]
		if c < 255 {
			s.counts[seq]++
		}
		if c == 0 {
			s.lat = append(s.lat, at.Sub(time.Unix(0, sent)))
		}
		s.mu.Unlock()
		if c > 0 {
			dups.Add(1)
			return
		}
		deliveries.Add(1)
		for {
			old := lastDelivery.Load()
			if at.UnixNano() <= old || lastDelivery.CompareAndSwap(old, at.UnixNano()) {
				break
			}
		}
		step(int(seq))
	}
	var closers []func()
	var closersMu sync.Mutex
	addCloser := func(f func()) { closersMu.Lock(); closers = append(closers, f); closersMu.Unlock() }
	closeAll := func() {
		closersMu.Lock()
		defer closersMu.Unlock()
		for _, f := range closers {
			f()
		}
		closers = nil
	}
	defer closeAll()

	// Connect and subscribe, bounded.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	var next atomic.Int64
	var wg sync.WaitGroup
	var subErr atomic.Value
	subscribeGo := func(s *sub) error {
		c := centrifuge.NewProtobufClient(ws, centrifuge.Config{ReadTimeout: 30 * time.Second, WriteTimeout: 10 * time.Second})
		addCloser(c.Close)
		c.OnError(func(e centrifuge.ErrorEvent) { addErr("client: " + e.Error.Error()) })
		c.OnDisconnected(func(e centrifuge.DisconnectedEvent) {
			if e.Code != 0 {
				addErr(fmt.Sprintf("disconnected:%d", e.Code))
			}
		})
		sb, err := c.NewSubscription(channel)
		if err != nil {
			return err
		}
		subscribed := make(chan struct{})
		sb.OnSubscribed(func(centrifuge.SubscribedEvent) { close(subscribed) })
		sb.OnPublication(func(e centrifuge.PublicationEvent) { deliver(s, e.Data, time.Now()) })
		if err := c.Connect(); err != nil {
			return err
		}
		if err := sb.Subscribe(); err != nil {
			return err
		}
		select {
		case <-subscribed:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	subscribeRaw := func(s *sub) error {
		c, err := dialRaw(ctx, ws, func(data []byte, at time.Time) { deliver(s, data, at) })
		if err != nil {
			return err
		}
		addCloser(c.close)
		return c.subscribe(ctx, channel)
	}
	for range min(concurrency, m) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= m || ctx.Err() != nil {
					return
				}
				subs[i] = &sub{counts: make([]uint8, n)}
				var err error
				if client == "raw" {
					err = subscribeRaw(subs[i])
				} else {
					err = subscribeGo(subs[i])
				}
				if err != nil {
					subErr.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	connectErr := ctx.Err()
	cancel()
	if e := subErr.Load(); e != nil {
		fail("subscribe: %v", e)
		return r
	}
	if connectErr != nil {
		fail("connect/subscribe phase did not finish within %s", timeout)
		return r
	}

	var publish func(ctx context.Context, data []byte) error
	if client == "raw" {
		pc, err := dialRaw(context.Background(), ws, nil)
		if err != nil {
			fail("publisher connect: %v", err)
			return r
		}
		defer pc.close()
		publish = func(ctx context.Context, data []byte) error { return pc.publish(ctx, channel, data) }
	} else {
		pub := centrifuge.NewProtobufClient(ws, centrifuge.Config{ReadTimeout: 30 * time.Second, WriteTimeout: 10 * time.Second})
		defer pub.Close()
		if err := pub.Connect(); err != nil {
			fail("publisher connect: %v", err)
			return r
		}
		publish = func(ctx context.Context, data []byte) error { _, err := pub.Publish(ctx, channel, data); return err }
	}
	ctx, cancel = context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var ackMu sync.Mutex
	var ackLat []time.Duration
	var sent, acked atomic.Int64
	var pubs sync.WaitGroup
	start := time.Now()
	firstSend.Store(start.UnixNano())
send:
	for seq := range n {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(seq) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break send
		}
		now := time.Now().UnixNano()
		sent.Add(1)
		pubs.Go(func() {
			err := publish(ctx, body(runID, int64(seq), now, size))
			at := time.Now()
			if err != nil {
				addErr("publish: " + err.Error())
				// Refused: release its place; it is not expected anywhere.
				remaining[seq].Store(1)
				step(seq)
				return
			}
			acked.Add(1)
			ackMu.Lock()
			ackLat = append(ackLat, at.Sub(time.Unix(0, now)))
			ackMu.Unlock()
			for {
				old := lastAck.Load()
				if at.UnixNano() <= old || lastAck.CompareAndSwap(old, at.UnixNano()) {
					break
				}
			}
			step(seq)
		})
	}
	select {
	case <-allDone:
		time.Sleep(time.Second) // late duplicates
	case <-ctx.Done():
		fail("publish phase did not finish within %s (%d of %d publications complete, %d deliveries)", timeout, finished.Load(), n, deliveries.Load())
	}
	pubs.Wait()
	closeAll()
	r.Sent, r.Acked, r.Deliveries = sent.Load(), acked.Load(), deliveries.Load()
	r.Expected = r.Acked * int64(m)
	if ld := lastDelivery.Load(); ld > firstSend.Load() {
		d := time.Duration(ld - firstSend.Load())
		r.Seconds = d.Seconds()
		r.DeliveriesPerSec = float64(r.Deliveries) / d.Seconds()
	}
	if la := lastAck.Load(); la > firstSend.Load() {
		r.AckedPerSec = float64(r.Acked) / time.Duration(la-firstSend.Load()).Seconds()
	}
	var all []time.Duration
	for _, s := range subs {
		s.mu.Lock()
		all = append(all, s.lat...)
		for _, c := range s.counts {
			if c == 0 {
				r.Missing++
			}
		}
		s.mu.Unlock()
	}
	r.Latency = summarize(all)
	r.AckLatency = summarize(ackLat)
	r.Duplicates = dups.Load()
	if r.Acked < int64(n) {
		// Missing counts only acked publications.
		r.Missing -= (int64(n) - r.Acked) * int64(m)
	}
	if r.Missing > 0 || r.Duplicates > 0 {
		fail("exactly-once: missing %d, duplicates %d", r.Missing, r.Duplicates)
	}
	return r
}

package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one run. Zero fields take the defaults given (see Defaults).
type Config struct {
	Scenario string // fanout, pairs, idle, storm, flood

	// Server is the SDK's server option (http(s) URL the router answers
	// under); WS, when set, is a websocket URL used directly.
	Server string
	WS     string
	AppID  string
	UA     string
	Tag    string
	// Prefix starts every client id of the run (default: random), so runs
	// against one database do not meet.
	Prefix string

	Concurrency  int           // parallel logins and setup requests
	PhaseTimeout time.Duration // bound of every phase
	Reconnect    bool          // re-login dropped sockets (fanout, pairs)
	NoRead       bool          // receivers do not mark read (fanout, pairs)
	BodySize     int           // bytes of each message body
	Grace        time.Duration // wait after the last expected delivery, for duplicates

	// fanout
	Members  int     // receivers (the sender is one more member)
	Messages int     // messages sent
	Window   int     // messages in flight (fanout: until acked and delivered to all; pairs: per client, until acked)
	Rate     float64 // fanout msgs/s (0: as fast as the window allows)

	// pairs
	Pairs        int
	PairMessages int    // per pair
	PairsMode    string // concurrent or alternate

	// idle
	Sockets int
	PID     int
	Settle  time.Duration
	Hold    time.Duration

	// storm
	Clients    int
	Convs      int // conversations per client
	Unread     int // of them with one unread message
	GroupSize  int // storm clients per conversation (plus one helper)
	RestartCmd string
	Steady     int           // extra clients chatting during the storm
	SteadyRate float64       // msgs/s per steady client
	SteadyFor  time.Duration // least time the steady clients chat from the storm's start

	// flood
	FloodFor     time.Duration // how long the flood lasts
	FloodWorkers int           // requests in flight per command family

	// Log receives progress lines (nil: none).
	Log io.Writer

	// onDelivery, for tests, sees every fanout delivery after it was
	// recorded (on the receiver's read goroutine).
	onDelivery func(c *Client, seq int64)
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	defd := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	if c.AppID == "" {
		c.AppID = "leanload"
	}
	if c.UA == "" {
		c.UA = "leanload/1 (js/5.0.0-rc.8 behaviour)"
	}
	if c.Prefix == "" {
		var b [3]byte
		_, _ = rand.Read(b[:])
		c.Prefix = "ll" + hex.EncodeToString(b[:])
	}
	def(&c.Concurrency, 64)
	defd(&c.PhaseTimeout, 5*time.Minute)
	def(&c.BodySize, 150)
	defd(&c.Grace, time.Second)
	def(&c.Members, 1000)
	def(&c.Messages, 2000)
	if c.Window <= 0 {
		c.Window = 256
		if c.Scenario == "pairs" {
			c.Window = 1
		}
	}
	def(&c.Pairs, 500)
	def(&c.PairMessages, 200)
	if c.PairsMode == "" {
		c.PairsMode = "concurrent"
	}
	def(&c.Sockets, 10000)
	defd(&c.Settle, 10*time.Second)
	def(&c.Clients, 2000)
	def(&c.Convs, 20)
	def(&c.Unread, 5)
	def(&c.GroupSize, 10)
	if c.SteadyRate <= 0 {
		c.SteadyRate = 2
	}
	defd(&c.SteadyFor, 5*time.Second)
	defd(&c.FloodFor, 10*time.Second)
	def(&c.FloodWorkers, 4)
}

func (c *Config) validate() error {
	if c.Server == "" && c.WS == "" {
		return errors.New("give -server (the SDK's server option) or -ws")
	}
	switch c.Scenario {
	case "fanout", "pairs", "idle", "storm", "flood":
	default:
		return fmt.Errorf("unknown scenario %q (fanout, pairs, idle, storm, flood)", c.Scenario)
	}
	if c.PairsMode != "concurrent" && c.PairsMode != "alternate" {
		return fmt.Errorf("pairs mode %q: concurrent or alternate", c.PairsMode)
	}
	if c.Scenario == "storm" && c.Unread > c.Convs {
		return fmt.Errorf("storm: -unread %d is more than -convs %d", c.Unread, c.Convs)
	}
	return nil
}

// Result is the outcome of a run: one of the scenario parts is set.
type Result struct {
	Scenario string             `json:"scenario"`
	Target   string             `json:"target"`
	Prefix   string             `json:"prefix"`
	Phases   map[string]float64 `json:"phase_seconds"`
	Errors   map[string]int     `json:"errors"`
	Fanout   *FanoutResult      `json:"fanout,omitempty"`
	Pairs    *PairsResult       `json:"pairs,omitempty"`
	Idle     *IdleResult        `json:"idle,omitempty"`
	Storm    *StormResult       `json:"storm,omitempty"`
	Flood    *FloodResult       `json:"flood,omitempty"`
	// Failures are what makes the run fail (exit status 1): missing or
	// duplicated messages, mismatched notifications, a stuck phase.
	Failures []string `json:"failures"`
	OK       bool     `json:"ok"`

	errs       *Errors
	phaseOrder []string
}

// Run runs the configured scenario. The error is for runs that could not
// measure anything (bad flags, no server); a run that measured but found
// failures returns a Result with OK false.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.Defaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	target := cfg.Server
	if cfg.WS != "" {
		target = cfg.WS
	}
	r := &Result{Scenario: cfg.Scenario, Target: target, Prefix: cfg.Prefix, Phases: map[string]float64{}, errs: &Errors{}}
	env := &env{cfg: &cfg, res: r}
	if strings.Contains(cfg.Server, ",") {
		// Several nodes of one deployment: clients spread over them.
		for _, s := range strings.Split(cfg.Server, ",") {
			env.eps = append(env.eps, &Endpoint{Server: strings.TrimSpace(s), AppID: cfg.AppID})
		}
		env.ep = env.eps[0]
	} else {
		env.ep = &Endpoint{Server: cfg.Server, WS: cfg.WS, AppID: cfg.AppID}
	}
	var err error
	switch cfg.Scenario {
	case "fanout":
		err = runFanout(ctx, env)
	case "pairs":
		err = runPairs(ctx, env)
	case "idle":
		err = runIdle(ctx, env)
	case "storm":
		err = runStorm(ctx, env)
	case "flood":
		err = runFlood(ctx, env)
	}
	if err != nil {
		r.Failures = append(r.Failures, err.Error())
	}
	r.Errors = r.errs.Counts()
	r.OK = len(r.Failures) == 0
	return r, nil
}

// env is what the scenarios share.
type env struct {
	cfg *Config
	res *Result
	ep  *Endpoint
	eps []*Endpoint // several nodes (Config.Server a comma-separated list)
}

func (e *env) logf(format string, args ...any) {
	if e.cfg.Log != nil {
		fmt.Fprintf(e.cfg.Log, "leanload: "+format+"\n", args...)
	}
}

func (e *env) fail(format string, args ...any) {
	e.res.Failures = append(e.res.Failures, fmt.Sprintf(format, args...))
}

func (e *env) clientOptions() *ClientOptions {
	return &ClientOptions{Endpoint: e.ep, Endpoints: e.eps, AppID: e.cfg.AppID, UA: e.cfg.UA, Tag: e.cfg.Tag,
		ConfigBitmap: ConfigBitmapSDK5, Errors: e.res.errs}
}

// phase runs f under the phase timeout and records its duration. A phase
// that runs out of time fails with a message naming it and what progress
// reported.
func (e *env) phase(ctx context.Context, name string, progress func() string, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.PhaseTimeout)
	defer cancel()
	e.logf("phase %s", name)
	start := time.Now()
	err := f(ctx)
	e.res.Phases[name] = time.Since(start).Seconds()
	e.res.phaseOrder = append(e.res.phaseOrder, name)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			msg := fmt.Sprintf("phase %s did not finish within %s", name, e.cfg.PhaseTimeout)
			if progress != nil {
				msg += " (" + progress() + ")"
			}
			return fmt.Errorf("%s: %w", msg, err)
		}
		return fmt.Errorf("phase %s: %w", name, err)
	}
	return nil
}

// parallel runs f(ctx, 0..n-1) on at most workers goroutines and returns
// the first error (the others stop early). done counts finished calls.
func parallel(ctx context.Context, n, workers int, done *atomic.Int64, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		once  sync.Once
		first error
	)
	for range min(n, max(workers, 1)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
				if done != nil {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// loginAll logs clients in, bounded.
func (e *env) loginAll(ctx context.Context, name string, clients []*Client) error {
	var done atomic.Int64
	return e.phase(ctx, name, func() string { return fmt.Sprintf("%d of %d logged in", done.Load(), len(clients)) },
		func(ctx context.Context) error {
			return parallel(ctx, len(clients), e.cfg.Concurrency, &done, func(ctx context.Context, i int) error {
				return clients[i].Login(ctx)
			})
		})
}

// closeAndWait closes clients and waits (bounded) for their read loops to
// end, so that what they recorded can be read without locks.
func closeAndWait(clients []*Client, timeout time.Duration) {
	closeAll(clients)
	deadline := time.After(timeout)
	for _, c := range clients {
		if c == nil {
			continue
		}
		if conn := c.Conn(); conn != nil {
			select {
			case <-conn.Done():
			case <-deadline:
				return
			}
		}
	}
}

// dropStats sums the clients' lost sockets and automatic re-logins.
func dropStats(clients []*Client) (drops, reconnects int64) {
	for _, c := range clients {
		if c != nil {
			drops += int64(c.Drops.Load())
			reconnects += int64(c.Reconnects.Load())
		}
	}
	return drops, reconnects
}

func closeAll(clients []*Client) {
	for _, c := range clients {
		if c != nil {
			c.Close()
		}
	}
}

// atomicMax raises a to v if v is larger.
func atomicMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// atomicMin lowers a to v if v is smaller or a is 0.
func atomicMin(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if (old != 0 && v >= old) || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// Summary is the human report of the run.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "leanload %s against %s (client ids %s-*)\n", r.Scenario, r.Target, r.Prefix)
	switch {
	case r.Fanout != nil:
		b.WriteString(r.Fanout.Summary())
	case r.Pairs != nil:
		b.WriteString(r.Pairs.Summary())
	case r.Idle != nil:
		b.WriteString(r.Idle.Summary())
	case r.Storm != nil:
		b.WriteString(r.Storm.Summary())
	case r.Flood != nil:
		b.WriteString(r.Flood.Summary())
	}
	fmt.Fprintf(&b, "\n  errors: %s", r.errs.String())
	b.WriteString("\n  phases:")
	for _, k := range r.phaseOrder {
		fmt.Fprintf(&b, " %s %.2fs", k, r.Phases[k])
	}
	if r.OK {
		b.WriteString("\n  result: OK")
	} else {
		b.WriteString("\n  result: FAILED")
		for _, f := range r.Failures {
			b.WriteString("\n    - " + f)
		}
	}
	return b.String()
}

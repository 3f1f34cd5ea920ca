package loadtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/leanhub/realtime/internal/wire"
)

// StormResult holds the figures of the storm scenario.
type StormResult struct {
	Clients         int     `json:"clients"`
	ConvsPerClient  int     `json:"convs_per_client"`
	UnreadPerClient int     `json:"unread_per_client"`
	GroupSize       int     `json:"group_size"`
	Conversations   int     `json:"conversations"`
	Messages        int     `json:"messages"`
	Mode            string  `json:"mode"` // drop (the tool closes the sockets) or restart
	RestartSeconds  float64 `json:"restart_seconds,omitempty"`

	Reopened   int64 `json:"reopened"`
	OpenFailed int64 `json:"open_failed"`
	Notified   int64 `json:"notified"`
	// LastNotificationSeconds is from the moment every client starts to
	// reconnect to the last client's unread notification.
	LastNotificationSeconds float64        `json:"last_notification_seconds"`
	Notification            LatencySummary `json:"notification_latency"`
	Open                    LatencySummary `json:"open_latency"`
	Check                   StormCheck     `json:"check"`
	// InitialUnreadPushes counts unread pushes at the first login (none on
	// a fresh run).
	InitialUnreadPushes int64 `json:"initial_unread_pushes"`
	// NotOwed counts clients whose lastUnreadNotifTime already covered
	// their messages (their login sync ran after the messages were sent):
	// the server rightly owes them nothing on reconnect. The echo round
	// trip after login makes this rare.
	NotOwed int64         `json:"not_owed"`
	Steady  *SteadyResult `json:"steady,omitempty"`
}

// StormCheck compares every client's unread notification with what was
// sent.
type StormCheck struct {
	NoNotification    int64    `json:"no_notification"`
	DuplicatePushes   int64    `json:"duplicate_pushes"`
	MissingConvs      int64    `json:"missing_convs"`
	UnexpectedConvs   int64    `json:"unexpected_convs"`
	CountMismatch     int64    `json:"count_mismatch"`
	LastIDMismatch    int64    `json:"last_id_mismatch"`
	MentionMismatch   int64    `json:"mention_mismatch"`
	RepeatedConvTuple int64    `json:"repeated_conv_tuple"`
	Examples          []string `json:"examples,omitempty"`
}

// Failed tells whether anything did not match.
func (s *StormCheck) Failed() bool {
	return s.NoNotification+s.DuplicatePushes+s.MissingConvs+s.UnexpectedConvs+s.CountMismatch+s.LastIDMismatch+s.MentionMismatch+s.RepeatedConvTuple > 0
}

func (s *StormCheck) String() string {
	out := fmt.Sprintf("no notification %d, duplicate pushes %d, missing convs %d, unexpected convs %d, count mismatches %d, last-id mismatches %d, mention mismatches %d",
		s.NoNotification, s.DuplicatePushes, s.MissingConvs, s.UnexpectedConvs, s.CountMismatch, s.LastIDMismatch, s.MentionMismatch)
	for _, e := range s.Examples {
		out += "\n    e.g. " + e
	}
	return out
}

func (s *StormCheck) example(format string, args ...any) {
	if len(s.Examples) < 10 {
		s.Examples = append(s.Examples, fmt.Sprintf(format, args...))
	}
}

// SteadyResult is what the steady chatters saw during the storm.
type SteadyResult struct {
	Clients  int            `json:"clients"`
	Rate     float64        `json:"rate_per_client"`
	Sent     int64          `json:"sent"`
	Acked    int64          `json:"acked"`
	Received int64          `json:"received"`
	Latency  LatencySummary `json:"latency"`
	// Drops and Reconnects: a restart drops the steady clients too; they
	// re-login by themselves.
	Drops      int64 `json:"drops"`
	Reconnects int64 `json:"reconnects"`
}

// Summary is the human report.
func (s *StormResult) Summary() string {
	out := fmt.Sprintf(`storm: %d clients x %d conversations (%d with one unread message, one mentioning; %d clients + 1 helper each), %s
  %d conversations, %d messages set up; %d unread pushes at first login, %d clients owed nothing
  reconnect at once: %d re-opened, %d refused; %d notified, last after %.2fs
  per client: notification %s
              open         %s
  check: %s`,
		s.Clients, s.ConvsPerClient, s.UnreadPerClient, s.GroupSize, s.Mode, s.Conversations, s.Messages, s.InitialUnreadPushes, s.NotOwed,
		s.Reopened, s.OpenFailed, s.Notified, s.LastNotificationSeconds, s.Notification, s.Open, s.Check.String())
	if s.RestartSeconds > 0 {
		out += fmt.Sprintf("\n  restart took %.2fs until the router answered", s.RestartSeconds)
	}
	if st := s.Steady; st != nil {
		out += fmt.Sprintf("\n  steady: %d clients at %.1f msgs/s each: sent %d, acked %d, received %d during the storm; send->receive %s; %d dropped, %d re-logged in",
			st.Clients, st.Rate, st.Sent, st.Acked, st.Received, st.Latency, st.Drops, st.Reconnects)
	}
	return out
}

type stormExpect struct {
	mid       string
	mentioned bool
}

type stormClient struct {
	mu        sync.Mutex
	sentNotif int64 // lastUnreadNotifTime sent at the storm's re-login
	live      int   // live messages received before the storm
	pushes    int   // unread pushes during the storm
	notified  time.Time
	opened    time.Time
	openErr   error
	tuples    map[string]*wire.UnreadTuple
	repeated  int
	firstSeen bool
}

// The storm layout: client i is in block i/GroupSize; conversation k of
// block b holds the block's clients and helper k (so K helpers, each in
// one conversation of every block, and conversations are unique by member
// set). Helper u < Unread sends one message in conversation u of every
// block, mentioning the block's clients j with j % Unread == u: every
// client has Unread conversations with one unread message and is
// mentioned in exactly one of them.
//
// The clients log in before those messages are sent and receive them live
// (acking them, not reading: the conversations are not on screen), as
// when a server restarts under connected users; they then reconnect with
// r: true, their session token and the lastUnreadNotifTime they hold. A
// client that had logged in after the messages would have had them in its
// login notification and would, rightly, be owed nothing on reconnect.
func runStorm(ctx context.Context, e *env) error {
	cfg := e.cfg
	C, K, U, g := cfg.Clients, cfg.Convs, cfg.Unread, max(cfg.GroupSize, 1)
	B := (C + g - 1) / g
	mode := "drop"
	if cfg.RestartCmd != "" {
		mode = "restart"
	}
	out := &StormResult{Clients: C, ConvsPerClient: K, UnreadPerClient: U, GroupSize: g, Conversations: B * K, Messages: B * U, Mode: mode}
	e.res.Storm = out

	var storming atomic.Bool
	var release time.Time // set before storming becomes true
	var initialPushes atomic.Int64
	var liveTotal atomic.Int64
	states := make([]*stormClient, C)
	names := make([]string, C)
	for i := range states {
		states[i] = &stormClient{tuples: map[string]*wire.UnreadTuple{}}
		names[i] = fmt.Sprintf("%s-c%05d", cfg.Prefix, i)
	}
	opts := e.clientOptions()
	opts.Ack = true
	opts.OnMessage = func(c *Client, d *wire.DirectCommand, at time.Time) {
		st := states[c.Index]
		st.mu.Lock()
		st.live++
		st.mu.Unlock()
		liveTotal.Add(1)
	}
	opts.OnUnread = func(c *Client, u *wire.UnreadCommand, at time.Time) {
		if !storming.Load() {
			initialPushes.Add(1)
			return
		}
		st := states[c.Index]
		st.mu.Lock()
		defer st.mu.Unlock()
		st.pushes++
		if st.notified.IsZero() {
			st.notified = at
		}
		for _, t := range u.GetConvs() {
			if _, ok := st.tuples[t.GetCid()]; ok {
				st.repeated++
			}
			st.tuples[t.GetCid()] = t
		}
	}
	clients := make([]*Client, C)
	for i := range clients {
		clients[i] = NewClient(names[i], i, opts)
	}
	hopts := e.clientOptions()
	helpers := make([]*Client, K)
	for k := range helpers {
		helpers[k] = NewClient(fmt.Sprintf("%s-h%03d", cfg.Prefix, k), k, hopts)
	}
	defer func() {
		closeAll(clients)
		closeAll(helpers)
	}()

	// Steady chatters: pairs in 1:1 conversations.
	steadyN := cfg.Steady &^ 1
	var steady []*Client
	var steadyCids []string
	var steadyLat Latencies
	var steadyRecv atomic.Int64
	if steadyN > 0 {
		out.Steady = &SteadyResult{Clients: steadyN, Rate: cfg.SteadyRate}
		sopts := e.clientOptions()
		sopts.Ack, sopts.Read, sopts.Reconnect = true, true, true
		shards := make([]*Shard, steadyN)
		for i := range shards {
			shards[i] = steadyLat.NewShard()
		}
		sopts.OnMessage = func(c *Client, d *wire.DirectCommand, at time.Time) {
			_, sent, ok := ParseBody(d.GetMsg(), cfg.Prefix)
			if !ok || !storming.Load() || sent < release.UnixNano() {
				return
			}
			steadyRecv.Add(1)
			shards[c.Index].Add(at.Sub(time.Unix(0, sent))) // one read goroutine per client
		}
		steady = make([]*Client, steadyN)
		for i := range steady {
			steady[i] = NewClient(fmt.Sprintf("%s-s%04d", cfg.Prefix, i), i, sopts)
		}
		defer closeAll(steady)
	}

	if err := e.loginAll(ctx, "login-helpers", append(append([]*Client(nil), helpers...), steady...)); err != nil {
		return err
	}
	// Conversations.
	cids := make([][]string, B) // [block][k]
	for b := range cids {
		cids[b] = make([]string, K)
	}
	var created atomic.Int64
	if err := e.phase(ctx, "create-conversations", func() string { return fmt.Sprintf("%d of %d created", created.Load(), B*K) },
		func(ctx context.Context) error {
			return parallel(ctx, B*K, cfg.Concurrency, &created, func(ctx context.Context, x int) error {
				b, k := x/K, x%K
				members := names[b*g : min((b+1)*g, C)]
				cid, err := helpers[k].StartConversation(ctx, fmt.Sprintf("leanload storm %d/%d", b, k), members)
				cids[b][k] = cid
				return err
			})
		}); err != nil {
		return err
	}
	if steadyN > 0 {
		steadyCids = make([]string, steadyN/2)
		if err := e.phase(ctx, "create-steady-conversations", nil, func(ctx context.Context) error {
			return parallel(ctx, steadyN/2, cfg.Concurrency, nil, func(ctx context.Context, p int) error {
				cid, err := steady[2*p].StartConversation(ctx, "leanload steady", []string{steady[2*p+1].ID})
				steadyCids[p] = cid
				return err
			})
		}); err != nil {
			return err
		}
	}
	if err := e.loginAll(ctx, "login-clients", clients); err != nil {
		return err
	}
	// The server syncs unread state after answering the login; an echo
	// round trip per socket waits for that, so the messages sent next are
	// not in a login notification.
	if err := e.phase(ctx, "login-sync", nil, func(ctx context.Context) error {
		return parallel(ctx, C, cfg.Concurrency, nil, func(ctx context.Context, i int) error { return clients[i].Echo(ctx) })
	}); err != nil {
		return err
	}

	// The unread messages, received live.
	mids := make([][]string, B) // [block][u]
	mts := make([][]int64, B)   // their timestamps
	for b := range mids {
		mids[b], mts[b] = make([]string, U), make([]int64, U)
	}
	var sentN atomic.Int64
	if err := e.phase(ctx, "send-messages", func() string { return fmt.Sprintf("%d of %d sent", sentN.Load(), B*U) },
		func(ctx context.Context) error {
			return parallel(ctx, B*U, cfg.Concurrency, &sentN, func(ctx context.Context, x int) error {
				b, u := x/U, x%U
				var mention []string
				for j := u; b*g+j < min((b+1)*g, C); j += U {
					mention = append(mention, names[b*g+j])
				}
				res, err := helpers[u].SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cids[b][u]),
					Msg:         proto.String(Body(cfg.Prefix, int64(x), time.Now().UnixNano(), cfg.BodySize)),
					MentionPids: mention}, true)
				if err != nil {
					return fmt.Errorf("helper %s in %s: %w", helpers[u].ID, cids[b][u], err)
				}
				mids[b][u], mts[b][u] = res.ID, res.Timestamp
				return nil
			})
		}); err != nil {
		return err
	}
	if err := e.phase(ctx, "live-delivery", func() string { return fmt.Sprintf("%d of %d live deliveries", liveTotal.Load(), C*U) },
		func(ctx context.Context) error {
			for liveTotal.Load() < int64(C*U) {
				if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
					return err
				}
			}
			// Let the trailing delivery acks go out before the sockets drop.
			return sleepCtx(ctx, AckInterval+200*time.Millisecond)
		}); err != nil {
		return err
	}
	closeAll(helpers)
	out.InitialUnreadPushes = initialPushes.Load()

	// Drop or restart.
	if mode == "drop" {
		for _, c := range clients {
			c.Drop()
		}
	} else {
		for _, c := range clients {
			c.Detach()
		}
		start := time.Now()
		if err := e.phase(ctx, "restart", nil, func(ctx context.Context) error {
			cmd := exec.CommandContext(ctx, "sh", "-c", cfg.RestartCmd)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("restart command: %w", err)
			}
			for {
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				err := e.ep.Ping(pctx)
				cancel()
				if err == nil {
					return nil
				}
				if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
					return fmt.Errorf("server did not answer the router again: %w", err)
				}
			}
		}); err != nil {
			return err
		}
		out.RestartSeconds = time.Since(start).Seconds()
	}

	// expect is what client i is owed on a re-login with lastUnreadNotifTime
	// since: its conversations with a message newer than that.
	expect := func(i int, since int64) map[string]stormExpect {
		b, j := i/g, i%g
		want := map[string]stormExpect{}
		for u := range U {
			if mts[b][u] > since {
				want[cids[b][u]] = stormExpect{mid: mids[b][u], mentioned: j%U == u}
			}
		}
		return want
	}

	// The storm.
	var steadySent, steadyAcked atomic.Int64
	stormDone := make(chan struct{})
	var steadyWG sync.WaitGroup
	var notified, failed, reopened atomic.Int64
	err := e.phase(ctx, "storm", func() string {
		return fmt.Sprintf("%d re-opened, %d refused, %d of %d notified", reopened.Load(), failed.Load(), notified.Load(), C)
	}, func(ctx context.Context) error {
		go0 := make(chan struct{})
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				<-go0
				st := states[i]
				st.mu.Lock()
				st.sentNotif = c.NotifTime()
				st.mu.Unlock()
				err := c.Relogin(ctx)
				st.mu.Lock()
				st.opened, st.openErr = time.Now(), err
				st.mu.Unlock()
				if err != nil {
					failed.Add(1)
					e.res.errs.Add("relogin:"+errorKey(err), err.Error())
				} else {
					reopened.Add(1)
				}
			})
		}
		release = time.Now()
		storming.Store(true)
		close(go0)
		for i, c := range steady {
			steadyWG.Go(func() {
				tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.SteadyRate))
				defer tick.Stop()
				for seq := int64(0); ; seq++ {
					if seq > 0 {
						select {
						case <-stormDone:
							return
						case <-tick.C:
						}
					}
					steadySent.Add(1)
					_, err := c.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(steadyCids[i/2]),
						Msg: proto.String(Body(cfg.Prefix, seq, time.Now().UnixNano(), cfg.BodySize))}, false)
					if err != nil {
						e.res.errs.Add("steady-send:"+errorKey(err), err.Error())
						continue
					}
					steadyAcked.Add(1)
				}
			})
		}
		defer func() {
			if len(steady) > 0 {
				// The steady clients chat at least SteadyFor.
				_ = sleepCtx(ctx, time.Until(release.Add(cfg.SteadyFor)))
			}
			close(stormDone)
			steadyWG.Wait()
		}()
		wg.Wait()
		for {
			n, pending := int64(0), false
			for i, st := range states {
				st.mu.Lock()
				switch {
				case !st.notified.IsZero():
					n++
				case st.openErr == nil && len(expect(i, st.sentNotif)) > 0:
					pending = true
				}
				st.mu.Unlock()
			}
			notified.Store(n)
			if !pending {
				return nil
			}
			if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
				return err
			}
		}
	})
	if err == nil {
		time.Sleep(cfg.Grace) // duplicate pushes
	}
	storming.Store(false)

	// Figures and the check.
	var notes, opens []time.Duration
	var last time.Duration
	x := &out.Check
	for i, st := range states {
		st.mu.Lock()
		if st.openErr == nil && !st.opened.IsZero() {
			opens = append(opens, st.opened.Sub(release))
		}
		want := expect(i, st.sentNotif)
		switch {
		case !st.notified.IsZero():
			d := st.notified.Sub(release)
			notes = append(notes, d)
			last = max(last, d)
		case len(want) == 0:
			out.NotOwed++
		default:
			x.NoNotification++
			x.example("%s got no unread notification (open error: %v; lastUnreadNotifTime %d; %d live messages)", names[i], st.openErr, st.sentNotif, st.live)
		}
		if st.pushes > 1 {
			x.DuplicatePushes += int64(st.pushes - 1)
			x.example("%s got %d unread pushes", names[i], st.pushes)
		}
		x.RepeatedConvTuple += int64(st.repeated)
		if !st.notified.IsZero() {
			for cid, t := range st.tuples {
				w, ok := want[cid]
				if !ok {
					x.UnexpectedConvs++
					x.example("%s: unexpected unread tuple for %s (%d unread)", names[i], cid, t.GetUnread())
					continue
				}
				if t.GetUnread() != 1 {
					x.CountMismatch++
					x.example("%s: %s has %d unread, want 1", names[i], cid, t.GetUnread())
				}
				if t.GetMid() != w.mid {
					x.LastIDMismatch++
					x.example("%s: %s last message %q, want %q", names[i], cid, t.GetMid(), w.mid)
				}
				if t.GetMentioned() != w.mentioned {
					x.MentionMismatch++
					x.example("%s: %s mentioned=%v, want %v", names[i], cid, t.GetMentioned(), w.mentioned)
				}
			}
			for cid := range want {
				if _, ok := st.tuples[cid]; !ok {
					x.MissingConvs++
					x.example("%s: no unread tuple for %s", names[i], cid)
				}
			}
		}
		st.mu.Unlock()
	}
	out.Reopened, out.OpenFailed, out.Notified = reopened.Load(), failed.Load(), int64(len(notes))
	out.LastNotificationSeconds = last.Seconds()
	out.Notification = Summarize(notes)
	out.Open = Summarize(opens)
	if out.Steady != nil {
		out.Steady.Drops, out.Steady.Reconnects = dropStats(steady)
		closeAndWait(steady, 10*time.Second)
		out.Steady.Sent, out.Steady.Acked, out.Steady.Received = steadySent.Load(), steadyAcked.Load(), steadyRecv.Load()
		out.Steady.Latency = steadyLat.Summary()
	}
	if x.Failed() {
		e.fail("storm check failed: %s", x.String())
	}
	return err
}

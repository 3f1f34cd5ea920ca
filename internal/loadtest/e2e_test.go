package loadtest_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/hub/hubtest"
	"github.com/leanhub/realtime/internal/loadtest"
	"github.com/leanhub/realtime/store"
)

// TestScenariosEndToEnd runs every scenario at a tiny size against an
// in-process hub on a temporary SQLite file, through the router and
// websockets only, and requires every check to pass. No timing is
// asserted.
func TestScenariosEndToEnd(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "load.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := hubtest.NewServer(t, st, &hub.Config{AppID: "leanload-test"})
	// tight has small buckets for every command family, for the flood.
	few := hub.Rate{PerSecond: 2, Burst: 4}
	tight := hubtest.NewServer(t, st, &hub.Config{AppID: "leanload-test", Limits: hub.Limits{
		SendRate: 2, SendBurst: 4, ConversationRate: few, PatchRate: few, QueryRate: few}})

	var log io.Writer
	if testing.Verbose() {
		log = os.Stderr
	}
	base := loadtest.Config{Server: srv.URL(), AppID: "leanload-test", PhaseTimeout: time.Minute, Grace: 50 * time.Millisecond, Log: log}
	cases := []struct {
		name string
		cfg  func(c *loadtest.Config)
		ok   func(t *testing.T, r *loadtest.Result)
	}{
		{"fanout", func(c *loadtest.Config) { c.Scenario, c.Members, c.Messages, c.Window = "fanout", 6, 30, 8 },
			func(t *testing.T, r *loadtest.Result) {
				if f := r.Fanout; f.Acked != 30 || f.Deliveries != 30*6 || f.Latency.Count != 30*6 {
					t.Errorf("fanout figures %+v", f)
				}
			}},
		{"fanout-rate-ws", func(c *loadtest.Config) {
			c.Scenario, c.Members, c.Messages, c.Rate = "fanout", 3, 10, 200
			c.WS, c.Server = "ws"+srv.HTTP.URL[len("http"):]+"/im/ws", ""
		}, func(t *testing.T, r *loadtest.Result) {
			if r.Fanout.Deliveries != 30 {
				t.Errorf("deliveries %d", r.Fanout.Deliveries)
			}
		}},
		{"pairs", func(c *loadtest.Config) { c.Scenario, c.Pairs, c.PairMessages = "pairs", 4, 9 },
			func(t *testing.T, r *loadtest.Result) {
				if p := r.Pairs; p.Acked != 36 || p.Deliveries != 36 {
					t.Errorf("pairs figures %+v", p)
				}
			}},
		{"pairs-alternate", func(c *loadtest.Config) {
			c.Scenario, c.Pairs, c.PairMessages, c.PairsMode = "pairs", 3, 8, "alternate"
		},
			func(t *testing.T, r *loadtest.Result) {
				if p := r.Pairs; p.Acked != 24 || p.Deliveries != 24 {
					t.Errorf("pairs figures %+v", p)
				}
			}},
		{"idle", func(c *loadtest.Config) {
			c.Scenario, c.Sockets, c.Settle, c.PID = "idle", 20, 10*time.Millisecond, os.Getpid()
		}, func(t *testing.T, r *loadtest.Result) {
			if i := r.Idle; i.LoggedIn != 20 || i.Dropped != 0 || (i.RSSSettledKiB == 0 && runtimeHasProc()) {
				t.Errorf("idle figures %+v", i)
			}
		}},
		{"storm", func(c *loadtest.Config) {
			c.Scenario, c.Clients, c.Convs, c.Unread, c.GroupSize = "storm", 14, 4, 3, 4
			c.Steady, c.SteadyRate, c.SteadyFor = 2, 20, 100*time.Millisecond
		}, func(t *testing.T, r *loadtest.Result) {
			// A client whose login sync raced the messages is rightly owed
			// nothing (NotOwed); every other one must be notified.
			if s := r.Storm; s.Notified+s.NotOwed != 14 || s.Notified == 0 || s.Reopened != 14 || s.Steady == nil {
				t.Errorf("storm figures %+v", s)
			}
		}},
		{"storm-restart-cmd", func(c *loadtest.Config) {
			// The command restarts nothing: the path (command, router
			// wait, re-login next to the old sockets) still runs.
			c.Scenario, c.Clients, c.Convs, c.Unread, c.GroupSize, c.RestartCmd = "storm", 5, 2, 1, 5, "true"
		}, func(t *testing.T, r *loadtest.Result) {
			if s := r.Storm; s.Notified+s.NotOwed != 5 || s.Mode != "restart" {
				t.Errorf("storm figures %+v", s)
			}
		}},
		{"flood", func(c *loadtest.Config) {
			c.Scenario, c.FloodFor, c.FloodWorkers, c.Server = "flood", time.Second, 2, tight.URL()
		}, func(t *testing.T, r *loadtest.Result) {
			// Every family is served up to its bucket and refused with
			// 4116 beyond it.
			for _, name := range loadtest.FloodFamilies {
				f := r.Flood.Families[name]
				if f == nil || f.Served == 0 || f.Refused["4116"] == 0 || f.Sent != f.Served+int64(sum(f.Refused)) {
					t.Errorf("flood %s: %+v", name, f)
				}
			}
			if r.Flood.Closed != "" {
				t.Errorf("the flooder's socket was closed: %s", r.Flood.Closed)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			c.cfg(&cfg)
			r, err := loadtest.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK {
				t.Fatalf("run failed: %v\n%s", r.Failures, r.Summary())
			}
			if len(r.Errors) > 0 {
				t.Errorf("errors: %v", r.Errors)
			}
			c.ok(t, r)
		})
	}
}

func runtimeHasProc() bool {
	_, err := os.Stat("/proc/self/status")
	return err == nil
}

func TestRunRefusesBadConfig(t *testing.T) {
	for _, c := range []loadtest.Config{
		{Scenario: "fanout"},
		{Scenario: "nope", Server: "http://x"},
		{Scenario: "pairs", Server: "http://x", PairsMode: "sideways"},
		{Scenario: "storm", Server: "http://x", Convs: 2, Unread: 3},
	} {
		if _, err := loadtest.Run(context.Background(), c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

func sum(m map[string]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

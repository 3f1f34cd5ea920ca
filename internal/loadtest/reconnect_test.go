package loadtest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/hub/hubtest"
	"github.com/leanhub/realtime/store"
)

// TestFanoutReconnectCatchesUp drops one receiver's socket in the middle of
// a fanout run with -reconnect: the client re-logs in (r: true, session
// token) and fetches what it missed from history, so the exactly-once check
// still passes and the recovery is counted.
func TestFanoutReconnectCatchesUp(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "load.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := hubtest.NewServer(t, st, &hub.Config{})
	var once sync.Once
	cfg := Config{Scenario: "fanout", Server: srv.URL(), Members: 3, Messages: 40, Window: 4, Reconnect: true,
		PhaseTimeout: time.Minute, Grace: 50 * time.Millisecond}
	cfg.onDelivery = func(c *Client, seq int64) {
		if c.Index == 1 && seq == 10 {
			once.Do(func() { c.Conn().Close() }) // as if the network dropped
		}
	}
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK {
		t.Fatalf("run failed: %v\n%s", r.Failures, r.Summary())
	}
	f := r.Fanout
	if f.Drops != 1 || f.Reconnects != 1 || f.Deliveries != 3*40 {
		t.Errorf("drops %d, reconnects %d, deliveries %d; want 1, 1, 120\n%s", f.Drops, f.Reconnects, f.Deliveries, r.Summary())
	}
	t.Logf("recovered from history: %d", f.Check.Recovered)
}

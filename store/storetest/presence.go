package storetest

import (
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/leanhub/realtime"
)

// RunPresence runs the PresenceStore conformance suite. newStore must
// return a new, empty store for each call (closed by the suite when it
// has a Close method).
func RunPresence(t *testing.T, newStore func(t *testing.T) realtime.PresenceStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s realtime.PresenceStore)
	}{
		{"Sessions", testPresenceSessions},
		{"Reap", testPresenceReap},
		{"ReapRace", testPresenceReapRace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			if c, ok := s.(interface{ Close() error }); ok {
				t.Cleanup(func() {
					if err := c.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				})
			}
			tt.fn(t, s)
		})
	}
}

func sessionsOf(ps []realtime.Presence) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Node+"/"+p.Session+"/"+p.ClientID+"/"+p.Tag+"/"+p.DeviceID)
	}
	slices.Sort(out)
	return out
}

func testPresenceSessions(t *testing.T, s realtime.PresenceStore) {
	now := time.Now()
	existed, err := s.KeepNode(ctx(t), "a", now.Add(time.Minute))
	if err != nil || existed {
		t.Fatalf("first KeepNode = %v, %v; want false, nil", existed, err)
	}
	if existed, err = s.KeepNode(ctx(t), "a", now.Add(2*time.Minute)); err != nil || !existed {
		t.Fatalf("second KeepNode = %v, %v; want true, nil", existed, err)
	}
	if _, err := s.KeepNode(ctx(t), "b", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	since := now.Truncate(time.Microsecond)
	must(t, s.UpdatePresence(ctx(t), "a", []realtime.Presence{
		{Session: "1", ClientID: "tom", Tag: "mobile", DeviceID: "d1", Since: since},
		{Session: "2", ClientID: "jerry", Since: since},
	}, nil))
	must(t, s.UpdatePresence(ctx(t), "b", []realtime.Presence{{Session: "1", ClientID: "tom", Tag: "web", Since: since}}, nil))
	// A node's session ids are its own: "1" of a and of b are two.
	must(t, s.UpdatePresence(ctx(t), "a", []realtime.Presence{{Session: "3", ClientID: "spike", Since: since}}, []string{"2"}))
	// Sessions of a node with no lease are not listed.
	must(t, s.UpdatePresence(ctx(t), "ghost", []realtime.Presence{{Session: "1", ClientID: "casper", Since: since}}, nil))
	got, err := s.ListPresence(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a/1/tom/mobile/d1", "a/3/spike//", "b/1/tom/web/"}
	if !slices.Equal(sessionsOf(got), want) {
		t.Fatalf("ListPresence = %v, want %v", sessionsOf(got), want)
	}
	for _, p := range got {
		if !p.Since.Equal(since) {
			t.Fatalf("Since = %v, want %v", p.Since, since)
		}
	}
	must(t, s.DropNode(ctx(t), "b"))
	got, _ = s.ListPresence(ctx(t))
	if want := []string{"a/1/tom/mobile/d1", "a/3/spike//"}; !slices.Equal(sessionsOf(got), want) {
		t.Fatalf("after DropNode: %v, want %v", sessionsOf(got), want)
	}
	if existed, _ := s.KeepNode(ctx(t), "b", now.Add(time.Minute)); existed {
		t.Fatal("a dropped node still had its lease")
	}
}

func testPresenceReap(t *testing.T, s realtime.PresenceStore) {
	now := time.Now()
	_, _ = s.KeepNode(ctx(t), "live", now.Add(time.Minute))
	_, _ = s.KeepNode(ctx(t), "dead", now.Add(-time.Second))
	must(t, s.UpdatePresence(ctx(t), "live", []realtime.Presence{{Session: "1", ClientID: "tom", Since: now}}, nil))
	must(t, s.UpdatePresence(ctx(t), "dead", []realtime.Presence{
		{Session: "1", ClientID: "jerry", Since: now}, {Session: "2", ClientID: "spike", Since: now}}, nil))
	must(t, s.UpdatePresence(ctx(t), "ghost", []realtime.Presence{{Session: "9", ClientID: "casper", Since: now}}, nil))
	nodes, gone, err := s.ReapNodes(ctx(t), now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(nodes, []string{"dead"}) {
		t.Fatalf("reaped nodes %v, want [dead]", nodes)
	}
	if want := []string{"dead/1/jerry//", "dead/2/spike//", "ghost/9/casper//"}; !slices.Equal(sessionsOf(gone), want) {
		t.Fatalf("reaped sessions %v, want %v", sessionsOf(gone), want)
	}
	nodes, gone, err = s.ReapNodes(ctx(t), now)
	if err != nil || len(nodes) != 0 || len(gone) != 0 {
		t.Fatalf("second reap = %v, %v, %v; want nothing", nodes, gone, err)
	}
	if existed, _ := s.KeepNode(ctx(t), "dead", now.Add(time.Minute)); existed {
		t.Fatal("a reaped node's KeepNode reported its lease as existing")
	}
	got, _ := s.ListPresence(ctx(t))
	if want := []string{"live/1/tom//"}; !slices.Equal(sessionsOf(got), want) {
		t.Fatalf("after reap: %v, want %v", sessionsOf(got), want)
	}
}

// testPresenceReapRace: of concurrent reapers, each dead session goes to
// exactly one.
func testPresenceReapRace(t *testing.T, s realtime.PresenceStore) {
	now := time.Now()
	var add []realtime.Presence
	for i := range 50 {
		add = append(add, realtime.Presence{Session: itoa(i), ClientID: "c" + itoa(i), Since: now})
	}
	for _, n := range []string{"x", "y"} {
		_, _ = s.KeepNode(ctx(t), n, now.Add(-time.Second))
		must(t, s.UpdatePresence(ctx(t), n, add, nil))
	}
	var mu sync.Mutex
	var all []realtime.Presence
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			_, gone, err := s.ReapNodes(ctx(t), now)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			all = append(all, gone...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(all) != 100 {
		t.Fatalf("reapers got %d sessions in all, want 100 (each once)", len(all))
	}
	if len(slices.Compact(sessionsOf(all))) != 100 {
		t.Fatal("a session was reaped twice")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

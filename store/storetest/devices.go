package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/leanhub/realtime"
)

// RunDevices runs the DeviceStore conformance suite. newStore must return a
// new, empty store for each call; if it also implements io.Closer-like
// Close() error (as realtime.Store does), the suite closes it when the
// subtest ends.
func RunDevices(t *testing.T, newStore func(t *testing.T) realtime.DeviceStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s realtime.DeviceStore)
	}{
		{"Devices", testDevices},
		{"Badges", testBadges},
		{"Queue", testQueue},
		{"QueueConcurrentClaims", testQueueConcurrent},
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

func testDevices(t *testing.T, s realtime.DeviceStore) {
	reg := func(d realtime.Device) {
		t.Helper()
		if err := s.RegisterDevice(ctx(t), d); err != nil {
			t.Fatalf("RegisterDevice(%+v): %v", d, err)
		}
	}
	reg(realtime.Device{ClientID: "a", Platform: realtime.PlatformIOS, Token: "t1", Topic: "com.x", Profile: "dev"})
	reg(realtime.Device{ClientID: "a", Platform: realtime.PlatformAndroid, Token: "t2"})
	reg(realtime.Device{ClientID: "b", Platform: realtime.PlatformIOS, Token: "t3"})
	devs, err := s.Devices(ctx(t), []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 {
		t.Fatalf("Devices(a) = %+v", devs)
	}
	slices.SortFunc(devs, func(x, y realtime.Device) int { return cmpStr(x.Token, y.Token) })
	if devs[0].Platform != realtime.PlatformIOS || devs[0].Token != "t1" || devs[0].Topic != "com.x" || devs[0].Profile != "dev" ||
		devs[0].ClientID != "a" || devs[0].UpdatedAt.IsZero() {
		t.Errorf("device = %+v", devs[0])
	}
	// The same token on another platform is another device.
	reg(realtime.Device{ClientID: "c", Platform: realtime.PlatformWeb, Token: "t1"})
	// A token moves to the client that registers it last.
	reg(realtime.Device{ClientID: "b", Platform: realtime.PlatformIOS, Token: "t1", Topic: "com.y"})
	if devs, _ := s.Devices(ctx(t), []string{"a"}); len(devs) != 1 || devs[0].Token != "t2" {
		t.Errorf("after the move, Devices(a) = %+v", devs)
	}
	devs, _ = s.Devices(ctx(t), []string{"b", "c", "nobody"})
	if len(devs) != 3 {
		t.Errorf("Devices(b, c) = %+v", devs)
	}
	if err := s.UnregisterDevice(ctx(t), realtime.PlatformIOS, "t1"); err != nil {
		t.Fatal(err)
	}
	if err := s.UnregisterDevice(ctx(t), realtime.PlatformIOS, "unknown"); err != nil {
		t.Errorf("unregister unknown: %v", err)
	}
	if devs, _ := s.Devices(ctx(t), []string{"b"}); len(devs) != 1 || devs[0].Token != "t3" {
		t.Errorf("after unregister, Devices(b) = %+v", devs)
	}
	if devs, err := s.Devices(ctx(t), nil); err != nil || len(devs) != 0 {
		t.Errorf("Devices(nil) = %v %v", devs, err)
	}
	if err := s.RegisterDevice(ctx(t), realtime.Device{ClientID: "a", Platform: realtime.PlatformIOS}); err == nil {
		t.Errorf("device without token registered")
	}
	if err := s.RegisterDevice(ctx(t), realtime.Device{Platform: realtime.PlatformIOS, Token: "t9"}); err == nil {
		t.Errorf("device without client registered")
	}
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testBadges(t *testing.T, s realtime.DeviceStore) {
	if err := s.RegisterDevice(ctx(t), realtime.Device{ClientID: "a", Platform: realtime.PlatformIOS, Token: "t"}); err != nil {
		t.Fatal(err)
	}
	ios := realtime.Device{Platform: realtime.PlatformIOS, Token: "t"}
	inc := func(ds ...realtime.Device) []int {
		t.Helper()
		n, err := s.IncrementBadges(ctx(t), ds)
		if err != nil || len(n) != len(ds) {
			t.Fatalf("IncrementBadges(%v) = %v %v", ds, n, err)
		}
		return n
	}
	for want := 1; want <= 3; want++ {
		if n := inc(ios); n[0] != want {
			t.Fatalf("IncrementBadges = %d, want %d", n[0], want)
		}
	}
	if devs, _ := s.Devices(ctx(t), []string{"a"}); len(devs) != 1 || devs[0].Badge != 3 {
		t.Errorf("badge = %+v", devs)
	}
	// Registering again for the same client keeps the badge.
	if err := s.RegisterDevice(ctx(t), realtime.Device{ClientID: "a", Platform: realtime.PlatformIOS, Token: "t"}); err != nil {
		t.Fatal(err)
	}
	if devs, _ := s.Devices(ctx(t), []string{"a"}); devs[0].Badge != 3 {
		t.Errorf("badge after re-register = %d, want 3", devs[0].Badge)
	}
	if err := s.ResetBadge(ctx(t), realtime.PlatformIOS, "t"); err != nil {
		t.Fatal(err)
	}
	if n := inc(ios); n[0] != 1 {
		t.Errorf("after reset, increment = %d", n[0])
	}
	// Many devices in one call; unknown and malformed ones get -1 and
	// are not created.
	if err := s.RegisterDevice(ctx(t), realtime.Device{ClientID: "b", Platform: realtime.PlatformAndroid, Token: "u"}); err != nil {
		t.Fatal(err)
	}
	android := realtime.Device{Platform: realtime.PlatformAndroid, Token: "u"}
	n := inc(android, realtime.Device{Platform: realtime.PlatformIOS, Token: "unknown"}, ios, realtime.Device{})
	if n[0] != 1 || n[1] != -1 || n[2] != 2 || n[3] != -1 {
		t.Errorf("IncrementBadges of four = %v, want [1 -1 2 -1]", n)
	}
	if devs, _ := s.Devices(ctx(t), []string{"a", "b"}); len(devs) != 2 {
		t.Errorf("devices after incrementing unknown ones = %+v", devs)
	}
	// Concurrent increments are not lost.
	if err := s.ResetBadge(ctx(t), realtime.PlatformIOS, "t"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.IncrementBadges(context.Background(), []realtime.Device{ios}); err != nil {
				t.Errorf("IncrementBadges: %v", err)
			}
		}()
	}
	wg.Wait()
	if devs, _ := s.Devices(ctx(t), []string{"a"}); devs[0].Badge != 20 {
		t.Errorf("badge after 20 concurrent increments = %d", devs[0].Badge)
	}
}

func notification(i int, created time.Time) *realtime.Notification {
	return &realtime.Notification{
		ID:        fmt.Sprintf("n%03d", i),
		Device:    realtime.Device{ClientID: "a", Platform: realtime.PlatformIOS, Token: "t", Topic: "com.x"},
		ConvID:    "0123456789abcdef01234567",
		From:      "b",
		MsgID:     fmt.Sprintf("m%d", i),
		Payload:   json.RawMessage(`{"alert":"hi","badge":3}`),
		Profile:   "dev",
		TeamID:    "TEAM",
		CreatedAt: created,
	}
}

func testQueue(t *testing.T, s realtime.DeviceStore) {
	now := time.UnixMilli(time.Now().UnixMilli())
	var ns []*realtime.Notification
	for i := range 3 {
		ns = append(ns, notification(i, now))
	}
	if err := s.EnqueuePush(ctx(t), ns); err != nil {
		t.Fatal(err)
	}
	// Enqueuing the same ids again does not duplicate them.
	if err := s.EnqueuePush(ctx(t), ns[:1]); err != nil {
		t.Fatal(err)
	}
	claimAt := now.Add(time.Second)
	got, err := s.ClaimPush(ctx(t), claimAt, time.Minute, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("ClaimPush(limit 2) = %d notifications", len(got))
	}
	n := got[0]
	want := notification(0, now)
	if n.ID != want.ID && n.ID != "n001" && n.ID != "n002" {
		t.Errorf("claimed id %q", n.ID)
	}
	var payload, wantPayload any
	_ = json.Unmarshal(n.Payload, &payload)
	_ = json.Unmarshal(want.Payload, &wantPayload)
	if n.Device != want.Device || n.ConvID != want.ConvID || n.From != "b" || n.Profile != "dev" || n.TeamID != "TEAM" ||
		!n.CreatedAt.Equal(now) || n.Attempts != 0 || fmt.Sprint(payload) != fmt.Sprint(wantPayload) {
		t.Errorf("claimed = %+v", n)
	}
	rest, _ := s.ClaimPush(ctx(t), claimAt, time.Minute, 10)
	if len(rest) != 1 {
		t.Fatalf("second claim = %d notifications, want the 1 not leased", len(rest))
	}
	if again, _ := s.ClaimPush(ctx(t), claimAt.Add(30*time.Second), time.Minute, 10); len(again) != 0 {
		t.Errorf("leased notifications claimed again: %d", len(again))
	}
	// Complete one, retry one later, let the third's lease expire.
	if err := s.CompletePush(ctx(t), got[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RetryPush(ctx(t), got[1].ID, claimAt.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	after := claimAt.Add(2 * time.Minute)
	exp, _ := s.ClaimPush(ctx(t), after, time.Minute, 10)
	if len(exp) != 1 || exp[0].ID != rest[0].ID {
		t.Errorf("after the lease expired: %+v, want %s", exp, rest[0].ID)
	}
	later, _ := s.ClaimPush(ctx(t), claimAt.Add(11*time.Minute), time.Minute, 10)
	if len(later) != 2 {
		t.Fatalf("at the retry time: %d notifications, want 2", len(later))
	}
	for _, n := range later {
		if n.ID == got[1].ID && n.Attempts != 1 {
			t.Errorf("retried notification attempts = %d, want 1", n.Attempts)
		}
	}
	if err := s.CompletePush(ctx(t), "unknown"); err != nil {
		t.Errorf("CompletePush(unknown): %v", err)
	}
	// Notifications without an id get one.
	anon := &realtime.Notification{Device: realtime.Device{ClientID: "a", Platform: realtime.PlatformIOS, Token: "t"}, Payload: json.RawMessage(`{}`)}
	if err := s.EnqueuePush(ctx(t), []*realtime.Notification{anon}); err != nil {
		t.Fatal(err)
	}
	if anon.ID == "" {
		t.Errorf("EnqueuePush left the id empty")
	}
}

func testQueueConcurrent(t *testing.T, s realtime.DeviceStore) {
	now := time.Now()
	var ns []*realtime.Notification
	for i := range 100 {
		ns = append(ns, notification(i, now))
	}
	if err := s.EnqueuePush(ctx(t), ns); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := s.ClaimPush(context.Background(), now.Add(time.Second), time.Hour, 7)
				if err != nil {
					t.Errorf("ClaimPush: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, n := range got {
					seen[n.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 100 {
		t.Errorf("claimed %d distinct notifications, want 100", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s claimed %d times", id, n)
		}
	}

}

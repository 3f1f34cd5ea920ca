package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leanhub/realtime"
)

// memStore is an in-memory realtime.DeviceStore with the queue semantics
// the SQL store promises (leases, due times, attempts).
type memStore struct {
	mu          sync.Mutex
	devices     map[string]realtime.Device // platform/token -> device
	queue       map[string]*queued
	retries     []retry
	unregisters []string
}

type queued struct {
	n          realtime.Notification
	due        time.Time
	leaseUntil time.Time
}

type retry struct {
	id   string
	next time.Time
}

func newMemStore() *memStore {
	return &memStore{devices: map[string]realtime.Device{}, queue: map[string]*queued{}}
}

func devKey(p realtime.Platform, token string) string { return string(p) + "/" + token }

func (s *memStore) RegisterDevice(_ context.Context, d realtime.Device) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.devices[devKey(d.Platform, d.Token)] = d
	return nil
}

func (s *memStore) UnregisterDevice(_ context.Context, p realtime.Platform, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.devices, devKey(p, token))
	s.unregisters = append(s.unregisters, devKey(p, token))
	return nil
}

func (s *memStore) Devices(_ context.Context, clientIDs []string) ([]realtime.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []realtime.Device
	for _, d := range s.devices {
		for _, c := range clientIDs {
			if d.ClientID == c {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

func (s *memStore) IncrementBadges(_ context.Context, ds []realtime.Device) ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, len(ds))
	for i, x := range ds {
		d, ok := s.devices[devKey(x.Platform, x.Token)]
		if !ok {
			out[i] = -1
			continue
		}
		d.Badge++
		s.devices[devKey(x.Platform, x.Token)] = d
		out[i] = d.Badge
	}
	return out, nil
}

func (s *memStore) ResetBadge(_ context.Context, p realtime.Platform, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[devKey(p, token)]
	d.Badge = 0
	s.devices[devKey(p, token)] = d
	return nil
}

func (s *memStore) EnqueuePush(_ context.Context, ns []*realtime.Notification) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range ns {
		if _, dup := s.queue[n.ID]; dup {
			continue
		}
		s.queue[n.ID] = &queued{n: *n, due: n.CreatedAt}
	}
	return nil
}

func (s *memStore) ClaimPush(_ context.Context, now time.Time, lease time.Duration, limit int) ([]*realtime.Notification, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*queued
	for _, q := range s.queue {
		if !q.due.After(now) && !q.leaseUntil.After(now) {
			due = append(due, q)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].due.Before(due[j].due) })
	if len(due) > limit {
		due = due[:limit]
	}
	out := make([]*realtime.Notification, len(due))
	for i, q := range due {
		q.leaseUntil = now.Add(lease)
		n := q.n
		out[i] = &n
	}
	return out, nil
}

func (s *memStore) CompletePush(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.queue, id)
	return nil
}

func (s *memStore) RetryPush(_ context.Context, id string, next time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retries = append(s.retries, retry{id, next})
	if q, ok := s.queue[id]; ok {
		q.n.Attempts++
		q.due = next
		q.leaseUntil = time.Time{}
	}
	return nil
}

func (s *memStore) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

func (s *memStore) lastRetry() retry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.retries) == 0 {
		return retry{}
	}
	return s.retries[len(s.retries)-1]
}

func (s *memStore) retryCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.retries)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startQueue starts a queue with a fast poll and a fake clock, stopped at
// the end of the test.
func startQueue(t *testing.T, store *memStore, pusher realtime.Pusher, opts QueueOptions) (*Queue, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	opts.Now = clock.Now
	opts.PollInterval = 2 * time.Millisecond
	opts.Logger = quietLogger()
	q, err := NewQueue(store, pusher, &opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := q.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return q, clock
}

func note(id, token string) *realtime.Notification {
	return &realtime.Notification{
		ID:      id,
		Device:  realtime.Device{ClientID: "bob", Platform: realtime.PlatformIOS, Token: token},
		ConvID:  "conv1",
		Payload: []byte(`{"alert":"hi"}`),
	}
}

func TestQueueDelivers(t *testing.T) {
	store := newMemStore()
	var mu sync.Mutex
	got := map[string]bool{}
	pusher := realtime.PusherFunc(func(ctx context.Context, n *realtime.Notification) error {
		mu.Lock()
		defer mu.Unlock()
		got[n.ID] = true
		return nil
	})
	q, clock := startQueue(t, store, pusher, QueueOptions{})
	ns := []*realtime.Notification{note("a", "t1"), note("b", "t2"), {Device: realtime.Device{Token: "t3"}}}
	if err := q.Enqueue(t.Context(), ns...); err != nil {
		t.Fatal(err)
	}
	if ns[2].ID == "" || !ns[2].CreatedAt.Equal(clock.Now()) {
		t.Errorf("Enqueue did not fill ID/CreatedAt: %+v", ns[2])
	}
	eventually(t, "delivery", func() bool { return store.pending() == 0 })
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || !got["a"] || !got["b"] || !got[ns[2].ID] {
		t.Errorf("delivered %v", got)
	}
}

func TestQueueRetriesWithBackoff(t *testing.T) {
	store := newMemStore()
	var calls atomic.Int32
	pusher := realtime.PusherFunc(func(ctx context.Context, n *realtime.Notification) error {
		if int(calls.Add(1)) <= 2 {
			if n.Attempts != int(calls.Load())-1 {
				t.Errorf("call %d saw Attempts %d", calls.Load(), n.Attempts)
			}
			return errors.New("service unavailable")
		}
		return nil
	})
	q, clock := startQueue(t, store, pusher, QueueOptions{BaseBackoff: time.Second, MaxBackoff: time.Hour})
	if err := q.Enqueue(t.Context(), note("a", "t1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first retry", func() bool { return store.retryCount() == 1 })
	start := clock.Now()
	if d := store.lastRetry().next.Sub(start); d < 500*time.Millisecond || d > time.Second {
		t.Errorf("first retry in %v, want 0.5s..1s", d)
	}
	// Nothing happens until the retry is due.
	time.Sleep(20 * time.Millisecond)
	if calls.Load() != 1 {
		t.Fatalf("retried before due: %d calls", calls.Load())
	}
	clock.Advance(time.Second)
	eventually(t, "second retry", func() bool { return store.retryCount() == 2 })
	if d := store.lastRetry().next.Sub(clock.Now()); d < time.Second || d > 2*time.Second {
		t.Errorf("second retry in %v, want 1s..2s", d)
	}
	clock.Advance(2 * time.Second)
	eventually(t, "delivery", func() bool { return store.pending() == 0 })
	if calls.Load() != 3 {
		t.Errorf("%d calls, want 3", calls.Load())
	}
}

func TestQueueHonoursRetryAfter(t *testing.T) {
	store := newMemStore()
	pusher := realtime.PusherFunc(func(ctx context.Context, n *realtime.Notification) error {
		return &ProviderError{Provider: "fcm", StatusCode: 429, RetryAfter: 10 * time.Minute}
	})
	q, clock := startQueue(t, store, pusher, QueueOptions{})
	q.Enqueue(t.Context(), note("a", "t1"))
	eventually(t, "retry", func() bool { return store.retryCount() == 1 })
	if d := store.lastRetry().next.Sub(clock.Now()); d != 10*time.Minute {
		t.Errorf("retry in %v, want the 10m Retry-After", d)
	}
}

func TestQueueBadTokenUnregisters(t *testing.T) {
	store := newMemStore()
	store.RegisterDevice(t.Context(), realtime.Device{ClientID: "bob", Platform: realtime.PlatformIOS, Token: "t1"})
	pusher := realtime.PusherFunc(func(ctx context.Context, n *realtime.Notification) error {
		return fmt.Errorf("apns said: %w", realtime.ErrBadDeviceToken)
	})
	q, _ := startQueue(t, store, pusher, QueueOptions{})
	q.Enqueue(t.Context(), note("a", "t1"))
	eventually(t, "drop", func() bool { return store.pending() == 0 })
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.unregisters) != 1 || store.unregisters[0] != "ios/t1" || len(store.devices) != 0 {
		t.Errorf("unregisters %v, devices %v", store.unregisters, store.devices)
	}
	if len(store.retries) != 0 {
		t.Errorf("bad token was retried")
	}
}

func TestQueueDrops(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		opts    QueueOptions
		created time.Duration // before now
	}{
		{name: "permanent", err: &ProviderError{Provider: "webhook", StatusCode: 400, Outcome: Permanent}},
		{name: "wrapped permanent", err: fmt.Errorf("x: %w", ErrPermanent)},
		{name: "expired", err: nil, created: realtime.PushValidity + time.Second},
		{name: "retry past validity", err: errors.New("down"), created: realtime.PushValidity - 100*time.Millisecond},
		{name: "max attempts", err: errors.New("down"), opts: QueueOptions{MaxAttempts: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			store.RegisterDevice(t.Context(), realtime.Device{Platform: realtime.PlatformIOS, Token: "t1"})
			var calls atomic.Int32
			pusher := realtime.PusherFunc(func(ctx context.Context, n *realtime.Notification) error {
				calls.Add(1)
				return tc.err
			})
			q, clock := startQueue(t, store, pusher, tc.opts)
			n := note("a", "t1")
			n.CreatedAt = clock.Now().Add(-tc.created)
			q.Enqueue(t.Context(), n)
			eventually(t, "drop", func() bool { return store.pending() == 0 })
			if tc.name == "expired" && calls.Load() != 0 {
				t.Error("expired notification was pushed")
			}
			store.mu.Lock()
			defer store.mu.Unlock()
			if len(store.retries) != 0 || len(store.unregisters) != 0 {
				t.Errorf("retries %v, unregisters %v", store.retries, store.unregisters)
			}
		})
	}
}

func TestQueueBoundsConcurrency(t *testing.T) {
	store := newMemStore()
	release := make(chan struct{})
	var inFlight, peak, done atomic.Int32
	pusher := realtime.PusherFunc(func(ctx context.Context, n *realtime.Notification) error {
		cur := inFlight.Add(1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
		done.Add(1)
		return nil
	})
	q, _ := startQueue(t, store, pusher, QueueOptions{Workers: 2})
	for i := range 5 {
		q.Enqueue(t.Context(), note(fmt.Sprint(i), fmt.Sprint("t", i)))
	}
	eventually(t, "two in flight", func() bool { return inFlight.Load() == 2 })
	time.Sleep(20 * time.Millisecond)
	if peak.Load() != 2 {
		t.Fatalf("peak concurrency %d, want 2", peak.Load())
	}
	close(release)
	eventually(t, "all delivered", func() bool { return done.Load() == 5 && store.pending() == 0 })
	if peak.Load() != 2 {
		t.Errorf("peak concurrency %d, want 2", peak.Load())
	}
}

func TestQueueStopCancelsAbandonedPushes(t *testing.T) {
	store := newMemStore()
	started := make(chan struct{})
	pusher := realtime.PusherFunc(func(ctx context.Context, n *realtime.Notification) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	q, err := NewQueue(store, pusher, &QueueOptions{Logger: quietLogger(), PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := q.Start(t.Context()); err == nil {
		t.Error("second Start succeeded")
	}
	q.Enqueue(t.Context(), note("a", "t1"))
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := q.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop = %v, want DeadlineExceeded", err)
	}
	if store.pending() != 1 || store.retryCount() != 0 {
		t.Errorf("abandoned push: pending %d, retries %d; want it left leased", store.pending(), store.retryCount())
	}
	if err := q.Stop(context.Background()); err != nil {
		t.Errorf("second Stop = %v", err)
	}
}

func TestNewQueueRejectsBadOptions(t *testing.T) {
	store, p := newMemStore(), nopPusher()
	for _, o := range []*QueueOptions{
		{Workers: -1},
		{PushTimeout: time.Minute, Lease: time.Minute},
		{BaseBackoff: time.Hour, MaxBackoff: time.Second},
	} {
		if _, err := NewQueue(store, p, o); err == nil {
			t.Errorf("NewQueue(%+v) succeeded", o)
		}
	}
	if _, err := NewQueue(nil, p, nil); err == nil {
		t.Error("NewQueue without store succeeded")
	}
}

func nopPusher() realtime.Pusher {
	return realtime.PusherFunc(func(context.Context, *realtime.Notification) error { return nil })
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt  int
		min, max time.Duration
	}{
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{4, 4 * time.Second, 8 * time.Second},
		{13, 30 * time.Minute, time.Hour},  // 4096s capped at 1h
		{500, 30 * time.Minute, time.Hour}, // no overflow
	} {
		for range 50 {
			d := backoff(tc.attempt, time.Second, time.Hour)
			if d < tc.min || d > tc.max {
				t.Fatalf("backoff(%d) = %v, want %v..%v", tc.attempt, d, tc.min, tc.max)
			}
		}
	}
}

package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/leanhub/realtime"
)

// QueueOptions tune a Queue. A nil *QueueOptions, and every zero field,
// means the default.
type QueueOptions struct {
	// Workers bounds concurrent deliveries; 0 means 8.
	Workers int
	// PushTimeout bounds one Pusher.Push call; 0 means 30s.
	PushTimeout time.Duration
	// Lease is how long a claimed notification is hidden from other
	// claimers; it must exceed PushTimeout. 0 means 2*PushTimeout.
	Lease time.Duration
	// PollInterval is how often the queue looks for due retries (and for
	// work enqueued by other processes) when nothing wakes it; 0 means 5s.
	PollInterval time.Duration
	// BaseBackoff and MaxBackoff bound the exponential retry delay: the
	// n-th retry waits about BaseBackoff*2^(n-1), capped at MaxBackoff,
	// with jitter (between half and all of it). 0 means 1s and 1h. A
	// pusher's Retry-After (ProviderError.RetryAfter) is honoured when
	// longer.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxAttempts drops a notification after that many failed deliveries;
	// 0 means no limit other than realtime.PushValidity.
	MaxAttempts int
	// Now is the clock; nil means time.Now. Tests inject a fake one.
	Now func() time.Time
	// Logger receives drops and failures; nil means slog.Default().
	Logger *slog.Logger
	// OnResult, when set, is told the outcome of every delivery attempt:
	// "sent", "retried", "failed" (dropped: bad token, permanent error,
	// too many attempts) or "expired". For metrics; it must not block.
	OnResult func(n *realtime.Notification, outcome string)
}

// Queue delivers notifications from a realtime.DeviceStore's durable queue
// through a Pusher, retrying failures with exponential backoff.
//
// A notification older than realtime.PushValidity is dropped. A Pusher error
// wrapping realtime.ErrBadDeviceToken unregisters the device and drops the
// notification; one wrapping ErrPermanent drops it; any other is retried.
// Several Queues (in several processes) may share one store: ClaimPush
// leases keep them from delivering the same notification at once.
// Delivery is at least once: a process that dies mid-push leaves the
// notification to be claimed again when its lease runs out.
type Queue struct {
	store  realtime.DeviceStore
	pusher realtime.Pusher
	opts   QueueOptions
	now    func() time.Time
	log    *slog.Logger

	wake chan struct{}

	mu         sync.Mutex
	started    bool
	stopClaims context.CancelFunc // stops claiming new work
	stopPushes context.CancelFunc // cancels deliveries under way
	done       chan struct{}      // closed when the run goroutine returns
}

// NewQueue returns a stopped Queue; call Start.
func NewQueue(store realtime.DeviceStore, pusher realtime.Pusher, opts *QueueOptions) (*Queue, error) {
	if store == nil || pusher == nil {
		return nil, errors.New("push: NewQueue needs a store and a pusher")
	}
	var o QueueOptions
	if opts != nil {
		o = *opts
	}
	if o.Workers < 0 || o.PushTimeout < 0 || o.Lease < 0 || o.PollInterval < 0 ||
		o.BaseBackoff < 0 || o.MaxBackoff < 0 || o.MaxAttempts < 0 {
		return nil, errors.New("push: negative QueueOptions field")
	}
	if o.Workers == 0 {
		o.Workers = 8
	}
	if o.PushTimeout == 0 {
		o.PushTimeout = 30 * time.Second
	}
	if o.Lease == 0 {
		o.Lease = 2 * o.PushTimeout
	}
	if o.Lease <= o.PushTimeout {
		return nil, fmt.Errorf("push: Lease %v must exceed PushTimeout %v", o.Lease, o.PushTimeout)
	}
	if o.PollInterval == 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.BaseBackoff == 0 {
		o.BaseBackoff = time.Second
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = time.Hour
	}
	if o.MaxBackoff < o.BaseBackoff {
		return nil, fmt.Errorf("push: MaxBackoff %v below BaseBackoff %v", o.MaxBackoff, o.BaseBackoff)
	}
	q := &Queue{store: store, pusher: pusher, opts: o, now: o.Now, log: o.Logger, wake: make(chan struct{}, 1)}
	if q.now == nil {
		q.now = time.Now
	}
	if q.log == nil {
		q.log = slog.Default()
	}
	return q, nil
}

// Enqueue stores notifications durably, then wakes the worker. It fills a
// missing ID (NotificationID with no message id: random) and CreatedAt (now)
// in place. Enqueue works whether or not the Queue is started.
func (q *Queue) Enqueue(ctx context.Context, ns ...*realtime.Notification) error {
	if len(ns) == 0 {
		return nil
	}
	now := q.now()
	for _, n := range ns {
		if n.ID == "" {
			n.ID = NotificationID(n.MsgID, n.Device)
		}
		if n.CreatedAt.IsZero() {
			n.CreatedAt = now
		}
	}
	if err := q.store.EnqueuePush(ctx, ns); err != nil {
		return fmt.Errorf("push: enqueue: %w", err)
	}
	q.Wake()
	return nil
}

// Wake makes a started Queue look for due notifications now rather than
// at its next poll. It never blocks.
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Start runs the Queue's worker until Stop is called or ctx is done (which,
// like a Stop whose context has expired, also cancels deliveries under way).
// Starting a started Queue is an error; a stopped Queue may be started again.
func (q *Queue) Start(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started {
		return errors.New("push: queue already started")
	}
	pushCtx, stopPushes := context.WithCancel(ctx)
	claimCtx, stopClaims := context.WithCancel(pushCtx)
	q.started, q.stopClaims, q.stopPushes = true, stopClaims, stopPushes
	q.done = make(chan struct{})
	go q.run(claimCtx, pushCtx, q.done)
	return nil
}

// Stop stops claiming notifications and waits for deliveries under way to
// finish. If ctx ends first, those deliveries are canceled (their
// notifications stay in the store, to be claimed again when their lease
// runs out), Stop waits for them to return and reports ctx's error. Stop on
// a stopped Queue returns nil.
func (q *Queue) Stop(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.started {
		return nil
	}
	q.started = false
	q.stopClaims()
	var err error
	select {
	case <-q.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	q.stopPushes()
	<-q.done
	return err
}

// run claims due notifications and delivers each in its own goroutine, at
// most Workers at a time. claimCtx ends on Stop; pushCtx (its parent) only
// when deliveries must be abandoned.
func (q *Queue) run(claimCtx, pushCtx context.Context, done chan struct{}) {
	defer close(done)
	var wg sync.WaitGroup
	defer wg.Wait()
	finished := make(chan struct{}, q.opts.Workers)
	free := q.opts.Workers
	poll := time.NewTimer(0)
	defer poll.Stop()
	claimNow := true
	for {
		if claimNow && free > 0 && claimCtx.Err() == nil {
			claimNow = false
			ns, err := q.store.ClaimPush(claimCtx, q.now(), q.opts.Lease, free)
			if err != nil && claimCtx.Err() == nil {
				q.log.Error("push: claim notifications", "err", err)
			}
			for _, n := range ns {
				free--
				wg.Add(1)
				go func() {
					defer wg.Done()
					q.deliver(pushCtx, n)
					finished <- struct{}{}
				}()
			}
			// A full batch suggests more are due: claim again as soon as
			// a worker is free.
			claimNow = err == nil && len(ns) > 0 && free == 0
			poll.Reset(q.opts.PollInterval)
		}
		select {
		case <-claimCtx.Done():
			return
		case <-finished:
			free++
		case <-q.wake:
			claimNow = true
		case <-poll.C:
			claimNow = true
		}
	}
}

// deliver pushes one claimed notification and records the outcome.
func (q *Queue) deliver(ctx context.Context, n *realtime.Notification) {
	log := q.log.With("notification", n.ID, "client", n.Device.ClientID, "conv", n.ConvID,
		"platform", string(n.Device.Platform))
	if n.Expired(q.now()) {
		q.result(n, "expired")
		log.Info("push: dropping expired notification", "created", n.CreatedAt)
		q.complete(ctx, log, n)
		return
	}
	// A notification claimed just before Stop is left for its lease to run
	// out rather than pushed.
	if ctx.Err() != nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, q.opts.PushTimeout)
	err := q.pusher.Push(pctx, n)
	cancel()
	stopping := ctx.Err() != nil
	// Record the outcome even while stopping, so that a push that went
	// through is not sent again.
	ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), q.opts.PushTimeout)
	defer cancel()
	switch {
	case err == nil:
		q.result(n, "sent")
		q.complete(ctx, log, n)
	case errors.Is(err, realtime.ErrBadDeviceToken):
		q.result(n, "failed")
		log.Info("push: device token refused; unregistering device", "err", err)
		if uerr := q.store.UnregisterDevice(ctx, n.Device.Platform, n.Device.Token); uerr != nil {
			log.Error("push: unregister device", "err", uerr)
		}
		q.complete(ctx, log, n)
	case errors.Is(err, ErrPermanent):
		q.result(n, "failed")
		log.Warn("push: dropping notification after permanent failure", "err", err)
		q.complete(ctx, log, n)
	case stopping:
		// Stopping: leave the notification leased; it is claimed again
		// when the lease runs out.
	default:
		attempts := n.Attempts + 1
		now := q.now()
		delay := max(backoff(attempts, q.opts.BaseBackoff, q.opts.MaxBackoff), retryAfter(err))
		next := now.Add(delay)
		if q.opts.MaxAttempts > 0 && attempts >= q.opts.MaxAttempts {
			q.result(n, "failed")
			log.Warn("push: dropping notification after too many attempts", "attempts", attempts, "err", err)
			q.complete(ctx, log, n)
			return
		}
		if next.Sub(n.CreatedAt) > realtime.PushValidity {
			q.result(n, "expired")
			log.Warn("push: dropping notification that would expire before its retry", "attempts", attempts, "err", err)
			q.complete(ctx, log, n)
			return
		}
		q.result(n, "retried")
		log.Warn("push: delivery failed; will retry", "attempts", attempts, "retry_in", delay, "err", err)
		if rerr := q.store.RetryPush(ctx, n.ID, next); rerr != nil {
			log.Error("push: record retry", "err", rerr)
		}
	}
}

func (q *Queue) result(n *realtime.Notification, outcome string) {
	if q.opts.OnResult != nil {
		q.opts.OnResult(n, outcome)
	}
}

func (q *Queue) complete(ctx context.Context, log *slog.Logger, n *realtime.Notification) {
	if err := q.store.CompletePush(ctx, n.ID); err != nil {
		log.Error("push: complete notification", "err", err)
	}
}

// backoff returns the delay before retry number attempt (1, 2, ...): base
// doubled per earlier attempt, capped at max, then jittered down to between
// half and all of it so that failures of one burst do not retry in step.
func backoff(attempt int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

package hub

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/push"
)

// What follows a stored message off the delivery path: push notifications
// for the recipients without a live session and the MessageSent hooks.
// The dispatcher hands each stored message to a bounded queue served by a
// few workers (no goroutine per message). When the queue is full (pushes
// cannot keep up for long) the follow-up of new messages is dropped with a
// warning rather than slowing delivery.

const (
	afterQueueSize = 16384
	afterWorkers   = 4
)

// pushPipeline is the hub's push configuration and the after-store queue.
type pushPipeline struct {
	q        *push.Queue // nil when push is off
	template *push.Template
	jobs     chan afterJob
	dropped  atomic.Int64
	workers  sync.WaitGroup
}

type afterJob struct {
	ev      *realtime.MessageEvent // with the stored message
	to      []string
	offline []string
}

// startPush starts the durable push queue when a Pusher is configured, and
// the after-store workers.
func (h *Hub) startPush() {
	p := &h.push
	p.jobs = make(chan afterJob, afterQueueSize)
	for range afterWorkers {
		p.workers.Add(1)
		go func() {
			defer p.workers.Done()
			for j := range p.jobs {
				h.runAfterJob(j)
			}
		}()
	}
	if h.cfg.Pusher == nil || h.devices == nil {
		if h.cfg.Pusher != nil {
			h.log.Warn("push disabled: the store keeps no devices and Config.DeviceStore is nil")
		}
		return
	}
	if h.cfg.PushTemplate != "" {
		t, err := push.ParseTemplate(h.cfg.PushTemplate)
		if err != nil {
			h.log.Error("bad push template; static push content disabled", "err", err)
		} else {
			p.template = t
		}
	}
	q, err := push.NewQueue(h.devices, h.cfg.Pusher, &push.QueueOptions{Logger: h.log, Now: h.cfg.Clock,
		OnResult: func(n *realtime.Notification, outcome string) {
			h.cfg.Metrics.PushResult(string(n.Device.Platform), outcome)
		}})
	if err != nil {
		h.log.Error("push queue", "err", err)
		return
	}
	if err := q.Start(h.ctx); err != nil {
		h.log.Error("push queue start", "err", err)
		return
	}
	p.q = q
}

// stopPush lets the workers finish the queued jobs, then stops the push
// queue.
func (h *Hub) stopPush(ctx context.Context) {
	p := &h.push
	close(p.jobs)
	done := make(chan struct{})
	go func() { p.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	if p.q != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = p.q.Stop(sctx)
		cancel()
	}
}

// wantsAfter reports whether stored messages of conv have any follow-up.
func (h *Hub) wantsAfter(conv *realtime.Conversation) bool {
	return (h.push.q != nil && !conv.Transient) || len(h.hooks.sent) > 0 || len(h.hooks.offline) > 0
}

// afterStored schedules the follow-up of a stored, delivered message.
func (h *Hub) afterStored(ev *realtime.MessageEvent, m *realtime.Message, to, offline []string) {
	if !h.wantsAfter(ev.Conversation) {
		return
	}
	// Hooks after the store see the stored message (id, timestamp).
	stored := *ev
	stored.Message = m
	select {
	case h.push.jobs <- afterJob{ev: &stored, to: to, offline: offline}:
	default:
		if n := h.push.dropped.Add(1); n == 1 || n%1000 == 0 {
			h.log.Warn("push and MessageSent hooks fall behind; follow-up of messages dropped", "dropped", n)
		}
	}
}

func (h *Hub) runAfterJob(j afterJob) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev, m := j.ev, j.ev.Message
	if len(j.offline) > 0 && !ev.Conversation.Transient {
		h.pushOffline(ctx, ev, m, j.offline)
	}
	if len(h.hooks.sent) == 0 {
		return
	}
	online := make([]string, 0, len(j.to))
	for _, id := range j.to {
		if !contains(j.offline, id) {
			online = append(online, id)
		}
	}
	for _, hook := range h.hooks.sent {
		sev := &realtime.MessageSentEvent{MessageEvent: *ev, Online: online, Offline: j.offline}
		if err := h.callHook(ctx, "MessageSent", func(ctx context.Context) error { return hook.MessageSent(ctx, sev) }); err != nil {
			h.log.Warn("hook failed", "hook", "MessageSent", "err", err)
		}
	}
}

// pushOffline decides and enqueues the pushes of one message.
func (h *Hub) pushOffline(ctx context.Context, ev *realtime.MessageEvent, m *realtime.Message, offline []string) {
	var mentioned []string
	for _, id := range offline {
		if m.Mentions(id) {
			mentioned = append(mentioned, id)
		}
	}
	var hookContent json.RawMessage
	recipients := offline
	force := false
	for _, hook := range h.hooks.offline {
		oev := &realtime.ReceiversOfflineEvent{MessageEvent: *ev, Offline: offline, MentionOffline: mentioned}
		var res *realtime.ReceiversOfflineResult
		err := h.callHook(ctx, "ReceiversOffline", func(ctx context.Context) error {
			var err error
			res, err = hook.ReceiversOffline(ctx, oev)
			return err
		})
		if err != nil {
			h.log.Warn("hook failed; pushing default content", "hook", "ReceiversOffline", "err", err)
			continue
		}
		if res == nil {
			continue
		}
		if res.Skip {
			return
		}
		if res.Offline != nil {
			recipients = res.Offline
		}
		if res.PushMessage != nil {
			hookContent = res.PushMessage
		}
		force = force || res.Force
	}
	if h.push.q == nil || len(recipients) == 0 {
		return
	}
	if !force {
		recipients = excluding(recipients, ev.Conversation.Muted)
	}
	rendered, err := push.Render(push.RenderInput{
		PushMessage: hookContent, PushData: ev.PushData, Template: h.push.template,
		ConvID: m.ConvID, From: m.From, Time: h.now(), MaxPushDataSize: h.cfg.Limits.MaxPushDataSize,
	})
	if err != nil {
		h.log.Warn("no usable push content", "conv", m.ConvID, "err", err)
		return
	}
	if rendered == nil {
		return
	}
	for _, e := range rendered.Skipped {
		h.log.Info("push content skipped", "conv", m.ConvID, "reason", e)
	}
	devices, err := h.devices.Devices(ctx, recipients)
	if err != nil {
		h.log.Error("push devices", "err", err)
		return
	}
	if len(devices) == 0 {
		return
	}
	ns, err := rendered.Notifications(ctx, h.devices, devices, push.Origin{ConvID: m.ConvID, From: m.From, MsgID: m.ID}, h.now())
	if err != nil {
		h.log.Error("build notifications", "err", err)
		return
	}
	if err := h.push.q.Enqueue(ctx, ns...); err != nil {
		h.log.Error("enqueue push", "err", err)
	}
}

func excluding(list, drop []string) []string {
	if len(drop) == 0 {
		return list
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		if !contains(drop, x) {
			out = append(out, x)
		}
	}
	return out
}

package hub

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
	"github.com/leanhub/realtime/push"
	"google.golang.org/protobuf/proto"
)

// pushQueue is the hub's push pipeline: nil when push is off.
type pushQueue struct {
	q        *push.Queue
	template *push.Template
}

// startPush starts the durable push queue when a Pusher is configured.
func (h *Hub) startPush() {
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
			h.pushq.template = t
		}
	}
	q, err := push.NewQueue(h.devices, h.cfg.Pusher, &push.QueueOptions{Logger: h.log, Now: h.cfg.Clock})
	if err != nil {
		h.log.Error("push queue", "err", err)
		return
	}
	if err := q.Start(h.ctx); err != nil {
		h.log.Error("push queue start", "err", err)
		return
	}
	h.pushq.q = q
	h.goOwned(func() {
		<-h.ctx.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = q.Stop(ctx)
	})
}

// afterStored runs what follows a stored, delivered message: push
// notifications for offline recipients and the MessageSent hooks. It runs
// off the send path.
func (h *Hub) afterStored(ev *realtime.MessageEvent, m *realtime.Message, to []string) {
	// Hooks after the store see the stored message (id, timestamp).
	stored := *ev
	stored.Message = m
	ev = &stored
	wantPush := h.pushq.q != nil && !ev.Conversation.Transient
	if !wantPush && len(h.hooks.sent) == 0 && len(h.hooks.offline) == 0 {
		return
	}
	var online, offline []string
	for _, id := range to {
		if h.online(id) {
			online = append(online, id)
		} else {
			offline = append(offline, id)
		}
	}
	h.goOwned(func() {
		ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
		defer cancel()
		if len(offline) > 0 && !ev.Conversation.Transient {
			h.pushOffline(ctx, ev, m, offline)
		}
		for _, hook := range h.hooks.sent {
			sev := &realtime.MessageSentEvent{MessageEvent: *ev, Online: online, Offline: offline}
			if err := h.callHook(ctx, "MessageSent", func(ctx context.Context) error { return hook.MessageSent(ctx, sev) }); err != nil {
				h.log.Warn("hook failed", "hook", "MessageSent", "err", err)
			}
		}
	})
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
	if h.pushq.q == nil || len(recipients) == 0 {
		return
	}
	if !force {
		recipients = excluding(recipients, ev.Conversation.Muted)
	}
	rendered, err := push.Render(push.RenderInput{
		PushMessage: hookContent, PushData: ev.PushData, Template: h.pushq.template,
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
	if err := h.pushq.q.Enqueue(ctx, ns...); err != nil {
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

// bindDevice binds the push token a mobile SDK sent at session open.
func (h *Hub) bindDevice(s *session) {
	if h.devices == nil {
		return
	}
	platform := realtime.PlatformIOS
	if len(s.token) > 100 || containsAny(s.token, ":-_") {
		platform = realtime.PlatformAndroid // FCM tokens are long and carry ':' '-' '_'
	}
	ctx, cancel := h.reqCtx()
	defer cancel()
	if err := h.devices.RegisterDevice(ctx, realtime.Device{ClientID: s.clientID, Platform: platform, Token: s.token, UpdatedAt: h.now()}); err != nil {
		h.log.Error("bind device", append(s.logAttrs(), "err", err)...)
	}
}

// unbindDevice removes the token bound at open, on logout.
func (h *Hub) unbindDevice(s *session) {
	if h.devices == nil || s.bitmap&bitAutoBindDevice == 0 {
		return
	}
	ctx, cancel := h.reqCtx()
	defer cancel()
	for _, p := range []realtime.Platform{realtime.PlatformIOS, realtime.PlatformAndroid} {
		if err := h.devices.UnregisterDevice(ctx, p, s.token); err != nil {
			h.log.Error("unbind device", append(s.logAttrs(), "err", err)...)
		}
	}
}

func containsAny(s, chars string) bool {
	for _, c := range chars {
		for _, x := range s {
			if x == c {
				return true
			}
		}
	}
	return false
}

// RegisterDevice binds a push device to a client id (Go API).
func (h *Hub) RegisterDevice(ctx context.Context, d realtime.Device) error {
	if h.devices == nil {
		return errors.New("hub: no DeviceStore")
	}
	if !validClientID(d.ClientID) || d.Token == "" || d.Platform == "" {
		return realtime.ErrInvalidMessage.WithDetail("device needs clientId, platform and token")
	}
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = h.now()
	}
	return h.devices.RegisterDevice(ctx, d)
}

// UnregisterDevice removes a push device (Go API).
func (h *Hub) UnregisterDevice(ctx context.Context, platform realtime.Platform, token string) error {
	if h.devices == nil {
		return errors.New("hub: no DeviceStore")
	}
	return h.devices.UnregisterDevice(ctx, platform, token)
}

// ResetBadge sets a device's badge to zero, as apps do when opened.
func (h *Hub) ResetBadge(ctx context.Context, platform realtime.Platform, token string) error {
	if h.devices == nil {
		return errors.New("hub: no DeviceStore")
	}
	return h.devices.ResetBadge(ctx, platform, token)
}

type deviceRequest struct {
	ClientID string `json:"clientId"`
	Platform string `json:"platform"`
	Token    string `json:"token"`
	Topic    string `json:"topic"`
	Profile  string `json:"profile"`
}

// serveRegisterDevice: POST {prefix}/1.1/rtm/devices {clientId, platform,
// token, topic, profile}. It needs the X-LC-IM-Session-Token of a session of
// that client (or the master key in X-LC-Key).
func (h *Hub) serveRegisterDevice(w http.ResponseWriter, r *http.Request) {
	var d deviceRequest
	if !h.deviceRequest(w, r, &d) {
		return
	}
	err := h.RegisterDevice(r.Context(), realtime.Device{ClientID: d.ClientID, Platform: realtime.Platform(d.Platform),
		Token: d.Token, Topic: d.Topic, Profile: d.Profile})
	h.deviceAnswer(w, err)
}

// serveUnregisterDevice: DELETE {prefix}/1.1/rtm/devices with the same body.
func (h *Hub) serveUnregisterDevice(w http.ResponseWriter, r *http.Request) {
	var d deviceRequest
	if !h.deviceRequest(w, r, &d) {
		return
	}
	h.deviceAnswer(w, h.UnregisterDevice(r.Context(), realtime.Platform(d.Platform), d.Token))
}

func (h *Hub) deviceRequest(w http.ResponseWriter, r *http.Request, d *deviceRequest) bool {
	if !h.restAuthorized(w, r) {
		return false
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10)).Decode(d); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": realtime.CodeInvalidMessage, "error": "body must be JSON {clientId, platform, token}"})
		return false
	}
	master := h.cfg.MasterKey != "" && r.Header.Get("X-LC-Key") == h.cfg.MasterKey+",master"
	if !master {
		if _, err := h.tokens.verify(r.Header.Get("X-LC-IM-Session-Token"), d.ClientID, h.now()); err != nil {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"code": realtime.CodeSessionTokenExpired, "error": "X-LC-IM-Session-Token of this client required"})
			return false
		}
	}
	return true
}

func (h *Hub) deviceAnswer(w http.ResponseWriter, err error) {
	if err != nil {
		e := realtime.AsError(err)
		status := http.StatusBadRequest
		if e.Code == realtime.CodeInternal {
			status = http.StatusInternalServerError
			h.log.Error("device endpoint", "err", err)
		}
		writeJSON(w, status, map[string]any{"code": e.Code, "error": e.Reason, "detail": e.Detail})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

// wantsPushSync reports whether the client syncs by server push (the
// mobile SDKs' default, on protocol version 1: lc.protobuf2.1) rather than
// by unread notifications and history pulls (lc.protobuf2.3).
func (s *session) wantsPushSync() bool { return s.c.protocolVersion == 1 }

// pushMissedMessages sends up to 20 missed messages per conversation as
// offline direct pushes, oldest first.
func (h *Hub) pushMissedMessages(ctx context.Context, s *session, tuples []realtime.UnreadTuple) {
	for _, t := range tuples {
		n := min(t.Unread, pushSyncPerConvLimit)
		msgs, err := h.store.History(ctx, realtime.HistoryQuery{ConvID: t.ConvID, Direction: realtime.Older, Limit: n})
		if err != nil {
			h.log.Error("push sync history", append(s.logAttrs(), "err", err)...)
			continue
		}
		for i, m := range msgs {
			cmd := directPush(m, false)
			cmd.DirectMessage.Offline = proto.Bool(true)
			cmd.DirectMessage.HasMore = proto.Bool(i == 0 && t.Unread > n)
			s.push(cmd)
		}
	}
	_ = wire.CommandType_direct
}

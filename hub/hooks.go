package hub

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	realtime "github.com/leanhub/realtime"
)

// hookSet holds the hooks found in Config.Hooks, by event.
type hookSet struct {
	received         []realtime.MessageReceivedHook
	sent             []realtime.MessageSentHook
	offline          []realtime.ReceiversOfflineHook
	update           []realtime.MessageUpdateHook
	convStart        []realtime.ConversationStartHook
	convAdd          []realtime.ConversationAddHook
	convRemove       []realtime.ConversationRemoveHook
	convUpdate       []realtime.ConversationUpdateHook
	convStarted      []realtime.ConversationStartedHook
	convAdded        []realtime.ConversationAddedHook
	convRemoved      []realtime.ConversationRemovedHook
	clientOnline     []realtime.ClientOnlineHook
	clientOffline    []realtime.ClientOfflineHook
	messageHookCount int
}

func collectHooks(values []any) hookSet {
	var hs hookSet
	for _, v := range values {
		if x, ok := v.(realtime.MessageReceivedHook); ok {
			hs.received = append(hs.received, x)
		}
		if x, ok := v.(realtime.MessageSentHook); ok {
			hs.sent = append(hs.sent, x)
		}
		if x, ok := v.(realtime.ReceiversOfflineHook); ok {
			hs.offline = append(hs.offline, x)
		}
		if x, ok := v.(realtime.MessageUpdateHook); ok {
			hs.update = append(hs.update, x)
		}
		if x, ok := v.(realtime.ConversationStartHook); ok {
			hs.convStart = append(hs.convStart, x)
		}
		if x, ok := v.(realtime.ConversationAddHook); ok {
			hs.convAdd = append(hs.convAdd, x)
		}
		if x, ok := v.(realtime.ConversationRemoveHook); ok {
			hs.convRemove = append(hs.convRemove, x)
		}
		if x, ok := v.(realtime.ConversationUpdateHook); ok {
			hs.convUpdate = append(hs.convUpdate, x)
		}
		if x, ok := v.(realtime.ConversationStartedHook); ok {
			hs.convStarted = append(hs.convStarted, x)
		}
		if x, ok := v.(realtime.ConversationAddedHook); ok {
			hs.convAdded = append(hs.convAdded, x)
		}
		if x, ok := v.(realtime.ConversationRemovedHook); ok {
			hs.convRemoved = append(hs.convRemoved, x)
		}
		if x, ok := v.(realtime.ClientOnlineHook); ok {
			hs.clientOnline = append(hs.clientOnline, x)
		}
		if x, ok := v.(realtime.ClientOfflineHook); ok {
			hs.clientOffline = append(hs.clientOffline, x)
		}
	}
	return hs
}

// callHook runs f with the hook deadline, turning a panic into an error.
// The hook runs in a goroutine of its own, so that a hook ignoring its
// context cannot hold the caller past the deadline; the goroutine is the
// hub's (Shutdown waits for it, within its own deadline).
func (h *Hub) callHook(ctx context.Context, name string, f func(ctx context.Context) error) (err error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.HookTimeout)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	var panicked atomic.Bool
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				panicked.Store(true)
				done <- fmt.Errorf("hook %s panicked: %v", name, r)
			}
		}()
		done <- f(ctx)
	}()
	outcome := "ok"
	select {
	case err = <-done:
		var rej *realtime.Rejection
		var rerr *realtime.Error
		switch {
		case panicked.Load():
			outcome = "panic"
		case err != nil && !errors.As(err, &rej) && !errors.As(err, &rerr):
			outcome = "error" // a rejection is the hook's answer, not a failure
		}
	case <-ctx.Done():
		err = fmt.Errorf("hook %s: %w", name, ctx.Err())
		outcome = "timeout"
	}
	h.cfg.Metrics.HookCalled(name, time.Since(start), outcome)
	return err
}

// hookFailed applies the failure policy to a hook error that is not a
// rejection: nil (go on) or the error to refuse with.
func (h *Hub) hookFailed(name string, err error) error {
	h.log.Warn("hook failed", "hook", name, "err", err)
	if h.cfg.HookFailure == HookFailureRefuse {
		return errFromHook
	}
	return nil
}

// rewriteInfo describes a hook's change to a message body, to tell the
// sender with MESSAGE_UPDATE.
type rewriteInfo struct {
	code   int
	reason string
}

// messageReceived runs the MessageReceived hooks in order. It may change
// ev.Message.Data and ev.To, and returns what to tell the sender when the
// body changed.
func (h *Hub) messageReceived(ctx context.Context, ev *realtime.MessageEvent) (*rewriteInfo, error) {
	var rw *rewriteInfo
	for _, hook := range h.hooks.received {
		var res *realtime.MessageReceivedResult
		err := h.callHook(ctx, "MessageReceived", func(ctx context.Context) error {
			var err error
			res, err = hook.MessageReceived(ctx, ev)
			return err
		})
		var rej *realtime.Rejection
		if errors.As(err, &rej) {
			return nil, &realtime.Error{Code: realtime.CodeMessageRejectedByApp, Reason: "MESSAGE_REJECTED_BY_APP", AppCode: rej.AppCode, Detail: rej.Detail}
		}
		if err != nil {
			if ferr := h.hookFailed("MessageReceived", err); ferr != nil {
				return nil, ferr
			}
			continue
		}
		if res == nil {
			continue
		}
		if res.Drop {
			return nil, &realtime.Error{Code: realtime.CodeMessageRejectedByApp, Reason: "MESSAGE_REJECTED_BY_APP", AppCode: res.AppCode, Detail: res.Detail}
		}
		if res.Data != nil && *res.Data != ev.Message.Data {
			ev.Message.Data = *res.Data
			code := res.PatchCode
			if code == 0 {
				code = 1
			}
			rw = &rewriteInfo{code: code, reason: res.PatchReason}
		}
		if res.To != nil {
			ev.To = res.To
		}
	}
	return rw, nil
}

// messageUpdate runs the MessageUpdate hooks; it may change the patch data
// and who is told.
func (h *Hub) messageUpdate(ctx context.Context, ev *realtime.MessageUpdateEvent, to *[]string) error {
	for _, hook := range h.hooks.update {
		var res *realtime.MessageUpdateResult
		err := h.callHook(ctx, "MessageUpdate", func(ctx context.Context) error {
			var err error
			res, err = hook.MessageUpdate(ctx, ev)
			return err
		})
		var rej *realtime.Rejection
		if errors.As(err, &rej) {
			return &realtime.Error{Code: realtime.CodeMessageUpdateRejected, Reason: "MESSAGE_UPDATE_REJECTED_BY_APP", AppCode: rej.AppCode, Detail: rej.Detail}
		}
		if err != nil {
			if ferr := h.hookFailed("MessageUpdate", err); ferr != nil {
				return ferr
			}
			continue
		}
		if res == nil {
			continue
		}
		if res.Drop {
			return &realtime.Error{Code: realtime.CodeMessageUpdateRejected, Reason: "MESSAGE_UPDATE_REJECTED_BY_APP", AppCode: res.AppCode, Detail: res.Detail}
		}
		if res.Data != nil && !ev.Patch.Recall {
			ev.Patch.Data = *res.Data
		}
		if res.To != nil {
			*to = res.To
			ev.To = res.To
		}
	}
	return nil
}

// convBefore runs the before-hooks of a conversation change.
func (h *Hub) convBefore(ctx context.Context, ev *realtime.ConversationEvent) error {
	var calls []func(context.Context) error
	switch ev.Op {
	case realtime.ConvStart:
		for _, x := range h.hooks.convStart {
			calls = append(calls, func(ctx context.Context) error { return x.ConversationStart(ctx, ev) })
		}
	case realtime.ConvAdd:
		for _, x := range h.hooks.convAdd {
			calls = append(calls, func(ctx context.Context) error { return x.ConversationAdd(ctx, ev) })
		}
	case realtime.ConvRemove:
		for _, x := range h.hooks.convRemove {
			calls = append(calls, func(ctx context.Context) error { return x.ConversationRemove(ctx, ev) })
		}
	case realtime.ConvUpdate:
		for _, x := range h.hooks.convUpdate {
			calls = append(calls, func(ctx context.Context) error { return x.ConversationUpdate(ctx, ev) })
		}
	}
	for _, call := range calls {
		err := h.callHook(ctx, "Conversation"+string(ev.Op), call)
		var rej *realtime.Rejection
		if errors.As(err, &rej) {
			return &realtime.Error{Code: realtime.CodeConvRejectedByApp, Reason: "CONVERSATION_REJECTED_BY_APP", AppCode: rej.AppCode, Detail: rej.Detail}
		}
		if err != nil {
			if ferr := h.hookFailed("Conversation"+string(ev.Op), err); ferr != nil {
				return ferr
			}
		}
	}
	return nil
}

// convAfter runs the after-hooks of a conversation change off the request
// path.
func (h *Hub) convAfter(ev *realtime.ConversationEvent) {
	var calls []func(context.Context) error
	switch ev.Op {
	case realtime.ConvStart:
		for _, x := range h.hooks.convStarted {
			calls = append(calls, func(ctx context.Context) error { return x.ConversationStarted(ctx, ev) })
		}
	case realtime.ConvAdd:
		for _, x := range h.hooks.convAdded {
			calls = append(calls, func(ctx context.Context) error { return x.ConversationAdded(ctx, ev) })
		}
	case realtime.ConvRemove:
		for _, x := range h.hooks.convRemoved {
			calls = append(calls, func(ctx context.Context) error { return x.ConversationRemoved(ctx, ev) })
		}
	}
	h.runAfter("Conversation"+string(ev.Op)+"d", calls)
}

func (h *Hub) runAfter(name string, calls []func(context.Context) error) {
	if len(calls) == 0 {
		return
	}
	h.goOwned(func() {
		for _, call := range calls {
			if err := h.callHook(h.ctx, name, call); err != nil {
				h.log.Warn("hook failed", "hook", name, "err", err)
			}
		}
	})
}

func (h *Hub) runClientHook(online bool, ev *realtime.ClientEvent) {
	var calls []func(context.Context) error
	if online {
		for _, x := range h.hooks.clientOnline {
			calls = append(calls, func(ctx context.Context) error { return x.ClientOnline(ctx, ev) })
		}
		h.runAfter("ClientOnline", calls)
		return
	}
	for _, x := range h.hooks.clientOffline {
		calls = append(calls, func(ctx context.Context) error { return x.ClientOffline(ctx, ev) })
	}
	h.runAfter("ClientOffline", calls)
}

package hub

import (
	"context"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// What a client missed, sent right after its session opened.
const (
	unreadNotifyMaxConvs  = 1000
	pushSyncPerConvLimit  = 20
	patchReplayMaxPatches = 1000
	// syncAttempts is how often a login's sync is tried before the socket
	// is closed (the SDK then reconnects and asks again).
	syncAttempts = 3
)

// afterLogin sends what a client missed: unread counts (or, for clients
// that asked for push-style sync, the missed messages) and patches. A sync
// that keeps failing closes the socket with 1011 instead of leaving the
// client silently without its counts: the SDK reconnects and asks again.
func (h *Hub) afterLogin(s *session, sm *wire.SessionCommand, reconnect bool) {
	// Admission: at most MaxConcurrentSyncs logins read the store at once;
	// the others wait here, their session open already.
	select {
	case h.syncs <- struct{}{}:
	case <-h.ctx.Done():
		return
	case <-s.c.quit:
		return
	}
	defer func() { <-h.syncs }()
	since := int64(0)
	if reconnect {
		since = sm.GetLastUnreadNotifTime()
	}
	var err error
	for attempt := 0; attempt < syncAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			case <-h.ctx.Done():
				return
			}
		}
		if err = h.syncUnread(s, since); err == nil {
			break
		}
	}
	if err == nil && sm.GetLastPatchTime() > 0 {
		err = h.replayPatches(s, sm.GetLastPatchTime())
	}
	if err != nil {
		h.log.Error("login sync failed; closing the socket so the client retries", append(s.logAttrs(), "err", err)...)
		s.c.closeWith(websocket.StatusInternalError, "sync failed, retry", closeShutdown)
	}
}

func (h *Hub) syncUnread(s *session, since int64) error {
	ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
	defer cancel()
	notifTime := h.nowMs()
	mark := h.eng.cursors.mark()
	tuples, err := h.store.Unread(ctx, s.clientID, since, unreadNotifyMaxConvs)
	if err != nil {
		return err
	}
	tuples = h.eng.cursors.overlayUnread(s.clientID, tuples, mark)
	pushMode := s.wantsPushSync()
	var missed []*wire.GenericCommand
	if pushMode && len(tuples) > 0 {
		// Read before the window's lock: deliveries to the session wait
		// on it.
		if missed, err = h.missedMessages(ctx, tuples); err != nil {
			return err
		}
	}
	return s.endSync(tuples, pushMode, func(tuples []realtime.UnreadTuple) error {
		if pushMode {
			for _, cmd := range missed {
				s.push(cmd)
			}
			return nil
		}
		s.push(unreadCommand(tuples, notifTime))
		return nil
	})
}

func unreadCommand(tuples []realtime.UnreadTuple, notifTime int64) *wire.GenericCommand {
	convs := make([]*wire.UnreadTuple, 0, len(tuples))
	for _, t := range tuples {
		u := &wire.UnreadTuple{Cid: proto.String(t.ConvID), Unread: proto.Int32(int32(t.Unread)), Mentioned: proto.Bool(t.Mentioned)}
		if m := t.Last; m != nil {
			u.Mid = proto.String(m.ID)
			u.Timestamp = proto.Int64(m.Timestamp)
			u.From = proto.String(m.From)
			if m.Binary != nil {
				u.BinaryMsg = m.Binary
			} else {
				u.Data = proto.String(m.Data)
			}
			if m.PatchTimestamp > 0 {
				u.PatchTimestamp = proto.Int64(m.PatchTimestamp)
			}
		}
		convs = append(convs, u)
	}
	return &wire.GenericCommand{Cmd: wire.CommandType_unread.Enum(),
		UnreadMessage: &wire.UnreadCommand{Convs: convs, NotifTime: proto.Int64(notifTime)}}
}

// replayPatches sends a reconnecting client the edits and recalls it missed.
func (h *Hub) replayPatches(s *session, since int64) error {
	ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
	defer cancel()
	msgs, err := h.store.PatchesSince(ctx, s.clientID, since, patchReplayMaxPatches)
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	items := make([]*wire.PatchItem, 0, len(msgs))
	last := since
	for _, m := range msgs {
		items = append(items, patchItem(m, m.PatchTimestamp))
		last = max(last, m.PatchTimestamp)
	}
	s.push(patchCommand(items, last))
	return nil
}

// wantsPushSync reports whether the client syncs by server push (the
// mobile SDKs' default, on protocol version 1: lc.protobuf2.1) rather than
// by unread notifications and history pulls (lc.protobuf2.3).
func (s *session) wantsPushSync() bool { return s.c.protocolVersion == 1 }

// missedMessages are up to 20 missed messages per conversation as
// offline direct pushes, oldest first.
func (h *Hub) missedMessages(ctx context.Context, tuples []realtime.UnreadTuple) ([]*wire.GenericCommand, error) {
	var out []*wire.GenericCommand
	for _, t := range tuples {
		n := min(t.Unread, pushSyncPerConvLimit)
		msgs, err := h.store.History(ctx, realtime.HistoryQuery{ConvID: t.ConvID, Direction: realtime.Older, Limit: n})
		if err != nil {
			return nil, err
		}
		for i, m := range msgs {
			cmd := directPush(m)
			cmd.DirectMessage.Offline = proto.Bool(true)
			cmd.DirectMessage.HasMore = proto.Bool(i == 0 && t.Unread > n)
			out = append(out, cmd)
		}
	}
	return out, nil
}

package hub

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// configBitmap bits a client sends at session open that the hub reads
// (the others: 1 patch messages, 2 temporary conversations, 8 transient
// message acks, 16 keep notifications, 32 partially failed messages; the
// hub behaves as they ask whether set or not).
const (
	bitAutoBindDevice = 4
	bitGroupReceipts  = 64
	bitOmitPeerID     = 128
)

const maxClientIDLen = 64

// session is one client id logged in on one socket.
type session struct {
	c        *conn
	clientID string
	tag      string
	deviceID string
	bitmap   int64
	token    string // device push token bound at open
	openedAt time.Time
	sid      string // the session's id among this node's (several nodes)
	// peerless is set once the client sent a command without peerId: the
	// SDK does that only for the first client of its Realtime (it set
	// bit 128 and routes pushes without peerId to that client), so pushes
	// to it may go without peerId too while it is alone on its socket.
	peerless atomic.Bool

	mu     sync.Mutex
	closed bool

	// The login sync window. A message sent before the client logged in
	// reaches it through the login sync only (its count, its last
	// message), as on one node; one sent after is pushed live, with its
	// MESSAGE event. From registration until the login sync answered,
	// stored messages for the session wait in held; after it, those sent
	// before the login that the sync reported (synced: conversation ->
	// newest seq) are not pushed when they arrive late (from another
	// node). syncCheck is set while any of this applies, so that
	// deliveries to other sessions take no lock.
	syncCheck atomic.Bool
	syncMu    sync.Mutex
	syncing   bool
	held      []*realtime.Message
	synced    map[string]int64
	syncedAt  time.Time
}

const (
	// maxHeld bounds the messages waiting for a session's login sync;
	// beyond it they are dropped: they are stored already, so the sync,
	// which has not answered yet, reports them.
	maxHeld = 1024
	// syncedMemory is how long a session remembers what its sync
	// reported: longer than a message takes to reach another node.
	syncedMemory = 30 * time.Second
)

// admitStored reports whether a stored message is pushed to s now; one
// that arrives while the login sync runs is held for its end.
func (s *session) admitStored(m *realtime.Message) bool {
	if !s.syncCheck.Load() {
		return true
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.syncing {
		if len(s.held) < maxHeld {
			s.held = append(s.held, m)
		}
		return false
	}
	if s.synced == nil || time.Since(s.syncedAt) > syncedMemory {
		s.synced = nil
		s.syncCheck.Store(false)
		return true
	}
	return !s.sentBeforeLogin(m) || m.Seq > s.synced[m.ConvID]
}

// sentBeforeLogin reports whether m was stored before the session opened.
func (s *session) sentBeforeLogin(m *realtime.Message) bool {
	return m.Timestamp < s.openedAt.UnixMilli()
}

// endSync ends the login sync window: send (called with the sync's
// tuples, adjusted) pushes what the sync tells, then the messages held
// meanwhile are pushed live after it, all under the window's lock so that
// no other push overtakes them. A held message the sync reported that was
// sent before the login is left to the sync; one sent after it is pushed
// live and taken out of the sync's count in unread mode (the SDK counts
// every live message); in push-sync mode the sync sent it already. What
// the sync reported is remembered for messages that arrive later.
func (s *session) endSync(tuples []realtime.UnreadTuple, pushMode bool, send func([]realtime.UnreadTuple) error) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	var covered map[string]int64
	for _, t := range tuples {
		if t.Last != nil {
			if covered == nil {
				covered = make(map[string]int64, len(tuples))
			}
			covered[t.ConvID] = t.Last.Seq
		}
	}
	counted := func(m *realtime.Message) bool {
		seq, ok := covered[m.ConvID]
		return ok && m.Seq <= seq
	}
	var live []*realtime.Message
	taken := map[string]int{}
	for _, m := range s.held {
		switch {
		case !counted(m):
			live = append(live, m)
		case s.sentBeforeLogin(m) || pushMode:
			// The sync has it.
		default:
			live = append(live, m)
			taken[m.ConvID]++
		}
	}
	if len(taken) > 0 {
		out := tuples[:0:0]
		for _, t := range tuples {
			t.Unread -= taken[t.ConvID]
			if t.Unread > 0 {
				out = append(out, t)
			}
		}
		tuples = out
	}
	if len(tuples) > 0 {
		if err := send(tuples); err != nil {
			return err // still syncing: the next attempt ends the window
		}
	}
	s.syncing = false
	s.held = nil
	s.synced, s.syncedAt = covered, time.Now()
	if covered == nil {
		s.syncCheck.Store(false)
	}
	for _, m := range live {
		s.push(directPush(m))
	}
	return nil
}

func (s *session) groupReceipts() bool { return s.bitmap&bitGroupReceipts != 0 }

// mayOmitPeerID reports whether pushes to s can go without peerId, so that
// a fan-out shares one frame among such sessions: the SDK routes
// peerId-less pushes to the first client its Realtime ever created, which
// is the client that sends commands without peerId (bit 128 alone does not
// say which client that is), and s is the only client on its socket.
func (s *session) mayOmitPeerID() bool {
	return s.peerless.Load() && s.bitmap&bitOmitPeerID != 0 && s.c.sessionCount() == 1
}

// push sends a server-initiated command to this session.
func (s *session) push(cmd *wire.GenericCommand) {
	cmd.PeerId = proto.String(s.clientID)
	cmd.Service = proto.Int32(2)
	cmd.ServerTs = proto.Int64(s.c.h.nowMs())
	s.c.sendCmd(cmd)
}

func validClientID(id string) bool {
	if id == "" || len(id) > maxClientIDLen || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

func (h *Hub) handleSession(c *conn, req *wire.GenericCommand) {
	switch req.GetOp() {
	case wire.OpType_open:
		// Authentication (an Authenticator may call the app's own
		// services) and the login sync read the store: off the read loop.
		// The client's next commands wait for it (conn.waitOpening).
		opened := c.startOpening(req.GetPeerId())
		if !c.serial(func() { h.openSession(c, req, opened) }) {
			opened()
		}
	case wire.OpType_close:
		s := c.session(req.GetPeerId())
		if s == nil {
			c.sendError(req, realtime.ErrSessionRequired)
			return
		}
		c.serial(func() {
			h.logout(s)
			c.reply(req, &wire.GenericCommand{Op: wire.OpType_closed.Enum(), SessionMessage: &wire.SessionCommand{}})
		})
	case wire.OpType_query:
		s := c.session(req.GetPeerId())
		if s == nil {
			c.sendError(req, realtime.ErrSessionRequired)
			return
		}
		if !h.limits.allow(s.clientID, famQuery, 1) {
			c.sendError(req, realtime.ErrRateLimited)
			return
		}
		ids := req.GetSessionMessage().GetSessionPeerIds()
		if len(ids) > maxQueryIDs {
			c.sendError(req, realtime.ErrInvalidCommand.WithDetail("at most %d client ids", maxQueryIDs))
			return
		}
		var online []string
		for _, id := range ids {
			if h.online(id) {
				online = append(online, id)
			}
		}
		c.reply(req, &wire.GenericCommand{Op: wire.OpType_query_result.Enum(),
			SessionMessage: &wire.SessionCommand{OnlineSessionPeerIds: online}})
	case wire.OpType_refresh:
		s := c.session(req.GetPeerId())
		if s == nil {
			c.sendError(req, realtime.ErrSessionRequired)
			return
		}
		c.reply(req, &wire.GenericCommand{Op: wire.OpType_refreshed.Enum(), SessionMessage: h.tokenFields(s)})
	default:
		c.sendError(req, realtime.ErrInvalidCommand.WithDetail("unsupported session op %s", req.GetOp()))
	}
}

// maxQueryIDs bounds the client ids of one online-status query.
const maxQueryIDs = 500

// logout ends a session at the client's request: its will is dropped and
// its device token unbound.
func (h *Hub) logout(s *session) {
	ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
	defer cancel()
	if err := h.revoke(ctx, s.clientID, deviceKey(s.deviceID, s.tag)); err != nil {
		h.log.Error("revoke session tokens at logout", append(s.logAttrs(), "err", err)...)
	}
	if err := h.store.ClearWill(ctx, s.clientID); err != nil {
		h.log.Error("clear will", append(s.logAttrs(), "err", err)...)
	} else {
		h.noWill.remember(s.clientID)
	}
	if h.cl != nil {
		h.eng.cursors.settle(ctx, s.clientID)
	}
	s.c.removeSession(s)
	h.endSession(s, "logout", false)
}

func (h *Hub) openSession(c *conn, req *wire.GenericCommand, opened func()) {
	once := sync.OnceFunc(opened)
	defer once()
	sm := req.GetSessionMessage()
	clientID := req.GetPeerId()
	if h.cfg.AppID != "" && req.GetAppId() != h.cfg.AppID {
		h.refuseLogin(c, req, realtime.ErrAppNotAvailable.WithDetail("this server serves app %q", h.cfg.AppID))
		return
	}
	if !validClientID(clientID) {
		h.refuseLogin(c, req, realtime.ErrInvalidLogin.WithDetail("client id must be 1-%d characters without spaces or control characters", maxClientIDLen))
		return
	}
	if h.cl != nil {
		if err := h.cl.waitReady(); err != nil {
			h.refuseLogin(c, req, err)
			return
		}
	}
	if existing := c.session(clientID); existing != nil && existing.clientID == clientID {
		// Opening again on the same socket: answer as if new.
		h.replyOpened(c, req, existing)
		return
	}
	if !h.limits.allowLogin(c.remoteIP) {
		h.refuseLogin(c, req, realtime.ErrRateLimited.WithDetail("too many logins from this address"))
		return
	}
	if c.sessionCount() >= h.cfg.Limits.MaxSessionsPerSocket {
		h.refuseLogin(c, req, realtime.ErrInvalidLogin.WithDetail("at most %d clients per socket", h.cfg.Limits.MaxSessionsPerSocket))
		return
	}
	tag, deviceID := sm.GetTag(), sm.GetDeviceId()
	reconnect := sm.GetR()
	tokenOK := false
	if reconnect && sm.GetSt() != "" {
		tok, err := h.verifyToken(sm.GetSt(), clientID)
		if err != nil {
			h.refuseLogin(c, req, realtime.ErrSessionTokenExpired)
			return
		}
		tokenOK = true
		if tag == "" {
			tag = tok.Tag
		}
		if deviceID == "" {
			deviceID = tok.Device
		}
	}
	// A valid session token stands in for the login signature, but the
	// Authenticator sees every open (so a ban takes effect on the next
	// reconnect).
	if err := h.authenticate(c, req, clientID, tag, deviceID, reconnect, tokenOK); err != nil {
		h.refuseLogin(c, req, err)
		return
	}

	s := &session{
		c:        c,
		clientID: clientID,
		tag:      tag,
		deviceID: deviceID,
		bitmap:   sm.GetConfigBitmap(),
		token:    sm.GetDeviceToken(),
		openedAt: h.now(),
	}

	// Conflicts are decided and the session registered under one lock, so
	// two racing logins with one <clientId, tag> cannot both stay.
	var kicked, replaced []*session
	if h.isClosing() {
		h.refuseLogin(c, req, realtime.ErrAppNotAvailable.WithDetail("server shutting down"))
		return
	}
	r := h.reg
	r.mu.Lock()
	if len(r.clients[clientID]) >= h.cfg.Limits.MaxSessionsPerClient {
		r.mu.Unlock()
		h.refuseLogin(c, req, realtime.ErrInvalidLogin.WithDetail("at most %d sessions of one client", h.cfg.Limits.MaxSessionsPerClient))
		return
	}
	for _, o := range slices.Clone(r.clients[clientID]) {
		if o.c == c {
			continue
		}
		switch {
		case reconnect:
			// A re-login never kicks: it is refused when it would conflict.
			// Without a valid token the SDK sends no tag, so any tagged
			// session of the client counts.
			if o.tag == "" {
				continue
			}
			if tokenOK && o.tag == tag && o.deviceID != "" && o.deviceID == deviceID {
				replaced = append(replaced, o) // the same device's stale socket
				continue
			}
			if !tokenOK || o.tag == tag {
				r.mu.Unlock()
				h.refuseLogin(c, req, realtime.ErrSessionConflict.WithDetail("already logged in on another device with tag %q", o.tag))
				return
			}
		case tag != "" && o.tag == tag:
			kicked = append(kicked, o)
		}
	}
	if reconnect && h.cl != nil {
		// The same rule against sessions on other nodes: a session of the
		// same device there is stale and yields when that node hears of
		// this one (resolveConflicts); another device's is not replaced.
		for _, o := range h.cl.remote.sessionsOf(clientID) {
			if o.tag == "" || tokenOK && o.tag == tag && o.device != "" && o.device == deviceID {
				continue
			}
			if !tokenOK || o.tag == tag {
				r.mu.Unlock()
				h.refuseLogin(c, req, realtime.ErrSessionConflict.WithDetail("already logged in on another device with tag %q", o.tag))
				return
			}
		}
	}
	for _, o := range append(kicked, replaced...) {
		h.unregisterLocked(o)
	}
	// Stored messages wait for the login sync (afterLogin ends the window).
	s.syncing = true
	s.syncCheck.Store(true)
	r.addLocked(s)
	h.cfg.Metrics.SessionOpened()
	if h.cl != nil {
		h.cl.opened(s)
	}
	// On the socket before the lock is released: a conflicting login
	// elsewhere that kicks s right after must find it there to remove it.
	c.addSession(s)
	r.mu.Unlock()

	for _, o := range kicked {
		h.yield(o, false)
	}
	for _, o := range replaced {
		h.yield(o, true)
	}

	h.replyOpened(c, req, s)
	once() // the client's next commands may go on; the sync follows
	if s.token != "" && s.bitmap&bitAutoBindDevice != 0 {
		h.bindDevice(s)
	}
	h.afterLogin(s, sm, reconnect)
	h.runClientHook(true, &realtime.ClientEvent{ClientID: clientID, Tag: tag, DeviceID: deviceID})
}

// refuseLogin answers a session open with err and counts the failure.
func (h *Hub) refuseLogin(c *conn, req *wire.GenericCommand, err error) {
	h.cfg.Metrics.LoginFailed(realtime.AsError(err).Code)
	c.sendError(req, err)
}

// yield ends a session (already unregistered) that a newer one with the
// same <clientId, tag> replaces: a stale connection of the same device
// (replaced) leaves its socket quietly; another device's session is
// kicked with 4111 SESSION_CONFLICT and its device's tokens revoked, so
// that a re-login of it does not kick the new device in turn.
func (h *Hub) yield(o *session, replaced bool) {
	if replaced {
		// Only that client leaves the old socket; others sharing it stay.
		o.c.removeSession(o)
		if o.c.sessionCount() == 0 {
			o.c.closeWith(4111, "replaced by a newer connection of the same device", closeShutdown)
		}
		h.afterSessionEnd(o, "reconnect", false)
		return
	}
	rctx, rcancel := context.WithTimeout(h.ctx, storeTimeout)
	if err := h.revoke(rctx, o.clientID, deviceKey(o.deviceID, o.tag)); err != nil {
		h.log.Error("revoke the kicked session's tokens", append(o.logAttrs(), "err", err)...)
	}
	rcancel()
	o.push(&wire.GenericCommand{Cmd: wire.CommandType_session.Enum(), Op: wire.OpType_closed.Enum(),
		SessionMessage: &wire.SessionCommand{Code: proto.Int32(realtime.CodeSessionConflict),
			Reason: proto.String("SESSION_CONFLICT"), Detail: proto.String("logged in on another device with the same tag")}})
	o.c.removeSession(o)
	h.afterSessionEnd(o, "conflict", false)
}

// tokenFields are the session token fields of opened and refreshed.
func (h *Hub) tokenFields(s *session) *wire.SessionCommand {
	now := h.now()
	return &wire.SessionCommand{
		St:    proto.String(h.tokens.issue(s.clientID, s.tag, s.deviceID, now, now.Add(h.cfg.SessionTokenTTL))),
		StTtl: proto.Int32(int32(h.cfg.SessionTokenTTL / time.Second)),
	}
}

func (h *Hub) replyOpened(c *conn, req *wire.GenericCommand, s *session) {
	c.reply(req, &wire.GenericCommand{
		Op:             wire.OpType_opened.Enum(),
		PeerId:         proto.String(s.clientID),
		SessionMessage: h.tokenFields(s),
	})
}

// endSession removes a session from the hub's registry and runs what a
// session end implies. unexpected is true for drops (no logout): the
// client's will message is then sent if this was its last live session.
func (h *Hub) endSession(s *session, reason string, unexpected bool) {
	h.reg.mu.Lock()
	registered := h.unregisterLocked(s)
	h.reg.mu.Unlock()
	if !registered {
		return
	}
	h.afterSessionEnd(s, reason, unexpected)
}

// unregisterLocked removes s from the registry; h.reg.mu must be held. It
// reports whether s was registered.
func (h *Hub) unregisterLocked(s *session) bool {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		return false
	}
	if !h.reg.removeLocked(s) {
		return false
	}
	h.cfg.Metrics.SessionClosed()
	if h.cl != nil {
		h.cl.closed(s)
	}
	return true
}

func (h *Hub) afterSessionEnd(s *session, reason string, unexpected bool) {
	if reason == "logout" && s.token != "" {
		h.unbindDevice(s)
	}
	if !h.reg.online(s.clientID) {
		h.rooms.leaveAll(s.clientID)
		// The will goes when the client is gone from every node.
		if unexpected && !h.online(s.clientID) && (h.cl == nil || !h.cl.dead.Load()) {
			h.sendWill(s.clientID)
		}
	}
	h.runClientHook(false, &realtime.ClientEvent{ClientID: s.clientID, Tag: s.tag, DeviceID: s.deviceID, Reason: reason})
}

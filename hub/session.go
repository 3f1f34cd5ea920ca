package hub

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// configBitmap bits a client sends at session open.
const (
	bitPatchMessage       = 1
	bitTempConv           = 2
	bitAutoBindDevice     = 4
	bitTransientAck       = 8
	bitKeepNotification   = 16
	bitPartialFailedMsg   = 32
	bitGroupReceipts      = 64
	bitOmitPeerID         = 128
	maxClientIDLen        = 64
	unreadNotifyMaxConvs  = 1000
	pushSyncPerConvLimit  = 20
	patchReplayMaxPatches = 1000
)

// session is one client id logged in on one socket.
type session struct {
	c        *conn
	clientID string
	tag      string
	deviceID string
	bitmap   int64
	token    string // device push token bound at open
	openedAt time.Time
	limiter  *tokenBucket

	mu     sync.Mutex
	closed bool
}

func (s *session) groupReceipts() bool { return s.bitmap&bitGroupReceipts != 0 }

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
		h.openSession(c, req)
	case wire.OpType_close:
		s := c.session(req.GetPeerId())
		if s == nil {
			c.sendError(req, realtime.ErrSessionRequired)
			return
		}
		if err := h.store.ClearWill(h.ctx, s.clientID); err != nil {
			h.log.Error("clear will", append(s.logAttrs(), "err", err)...)
		} else {
			h.noWill.remember(s.clientID)
		}
		c.removeSession(s)
		h.endSession(s, "logout", false)
		c.reply(req, &wire.GenericCommand{Op: wire.OpType_closed.Enum(), SessionMessage: &wire.SessionCommand{}})
	case wire.OpType_query:
		if c.session(req.GetPeerId()) == nil {
			c.sendError(req, realtime.ErrSessionRequired)
			return
		}
		var online []string
		for _, id := range req.GetSessionMessage().GetSessionPeerIds() {
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
		c.reply(req, &wire.GenericCommand{Op: wire.OpType_refreshed.Enum(), SessionMessage: &wire.SessionCommand{
			St:    proto.String(h.tokens.issue(s.clientID, s.tag, s.deviceID, h.now().Add(h.cfg.SessionTokenTTL))),
			StTtl: proto.Int32(int32(h.cfg.SessionTokenTTL / time.Second)),
		}})
	default:
		c.sendError(req, realtime.ErrInvalidCommand.WithDetail("unsupported session op %s", req.GetOp()))
	}
}

func (h *Hub) openSession(c *conn, req *wire.GenericCommand) {
	sm := req.GetSessionMessage()
	clientID := req.GetPeerId()
	if h.cfg.AppID != "" && req.GetAppId() != h.cfg.AppID {
		c.sendError(req, realtime.ErrAppNotAvailable.WithDetail("this server serves app %q", h.cfg.AppID))
		return
	}
	if !validClientID(clientID) {
		c.sendError(req, realtime.ErrInvalidLogin.WithDetail("client id must be 1-%d characters without spaces or control characters", maxClientIDLen))
		return
	}
	if existing := c.session(clientID); existing != nil && existing.clientID == clientID {
		// Opening again on the same socket: answer as if new.
		h.replyOpened(c, req, existing)
		return
	}
	if c.sessionCount() >= h.cfg.Limits.MaxSessionsPerSocket {
		c.sendError(req, realtime.ErrInvalidLogin.WithDetail("at most %d clients per socket", h.cfg.Limits.MaxSessionsPerSocket))
		return
	}
	tag, deviceID := sm.GetTag(), sm.GetDeviceId()
	reconnect := sm.GetR()
	tokenOK := false
	if reconnect && sm.GetSt() != "" {
		tok, err := h.tokens.verify(sm.GetSt(), clientID, h.now())
		if err != nil {
			c.sendError(req, realtime.ErrSessionTokenExpired)
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
		c.sendError(req, err)
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
		limiter:  newTokenBucket(h.cfg.Limits.SendRate, h.cfg.Limits.SendBurst, h.now),
	}

	// Conflicts are decided and the session registered under one lock, so
	// two racing logins with one <clientId, tag> cannot both stay.
	var kicked, replaced []*session
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		c.sendError(req, realtime.ErrAppNotAvailable.WithDetail("server shutting down"))
		return
	}
	for o := range h.clients[clientID] {
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
				h.mu.Unlock()
				c.sendError(req, realtime.ErrSessionConflict.WithDetail("already logged in on another device with tag %q", o.tag))
				return
			}
		case tag != "" && o.tag == tag:
			kicked = append(kicked, o)
		}
	}
	for _, o := range append(kicked, replaced...) {
		h.unregisterLocked(o)
	}
	set := h.clients[clientID]
	if set == nil {
		set = make(map[*session]struct{})
		h.clients[clientID] = set
	}
	set[s] = struct{}{}
	// On the socket before h.mu is released: a conflicting login elsewhere
	// that kicks s right after must find it there to remove it.
	c.addSession(s)
	h.mu.Unlock()
	c.loggedIn.Store(true)

	for _, o := range kicked {
		o.push(&wire.GenericCommand{Cmd: wire.CommandType_session.Enum(), Op: wire.OpType_closed.Enum(),
			SessionMessage: &wire.SessionCommand{Code: proto.Int32(realtime.CodeSessionConflict),
				Reason: proto.String("SESSION_CONFLICT"), Detail: proto.String("logged in on another device with the same tag")}})
		o.c.removeSession(o)
		h.afterSessionEnd(o, "conflict", false)
	}
	for _, o := range replaced {
		// Only that client leaves the old socket; others sharing it stay.
		o.c.removeSession(o)
		if o.c.sessionCount() == 0 {
			o.c.closeWith(4111, "replaced by a newer connection of the same device", closeShutdown)
		}
		h.afterSessionEnd(o, "reconnect", false)
	}

	h.replyOpened(c, req, s)
	if s.token != "" && s.bitmap&bitAutoBindDevice != 0 {
		h.bindDevice(s)
	}
	h.afterLogin(s, sm, reconnect)
	h.runClientHook(true, &realtime.ClientEvent{ClientID: clientID, Tag: tag, DeviceID: deviceID})
}

func (h *Hub) replyOpened(c *conn, req *wire.GenericCommand, s *session) {
	c.reply(req, &wire.GenericCommand{
		Op:     wire.OpType_opened.Enum(),
		PeerId: proto.String(s.clientID),
		SessionMessage: &wire.SessionCommand{
			St:    proto.String(h.tokens.issue(s.clientID, s.tag, s.deviceID, h.now().Add(h.cfg.SessionTokenTTL))),
			StTtl: proto.Int32(int32(h.cfg.SessionTokenTTL / time.Second)),
		},
	})
}

// afterLogin sends what a client missed: unread counts (or, for clients
// that asked for push-style sync, the missed messages) and patches.
func (h *Hub) afterLogin(s *session, sm *wire.SessionCommand, reconnect bool) {
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	since := int64(0)
	if reconnect {
		since = sm.GetLastUnreadNotifTime()
	}
	tuples, err := h.store.Unread(ctx, s.clientID, since, unreadNotifyMaxConvs)
	if err != nil {
		h.log.Error("unread on login", append(s.logAttrs(), "err", err)...)
	} else if len(tuples) > 0 {
		if s.wantsPushSync() {
			h.pushMissedMessages(ctx, s, tuples)
		} else {
			s.push(unreadCommand(tuples, h.nowMs()))
		}
	}
	if lp := sm.GetLastPatchTime(); lp > 0 {
		h.replayPatches(ctx, s, lp)
	}
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

// endSession removes a session from the hub's registry and runs what a
// session end implies. unexpected is true for drops (no logout): the
// client's will message is then sent if this was its last live session.
func (h *Hub) endSession(s *session, reason string, unexpected bool) {
	h.mu.Lock()
	registered := h.unregisterLocked(s)
	h.mu.Unlock()
	if !registered {
		return
	}
	h.afterSessionEnd(s, reason, unexpected)
}

// unregisterLocked removes s from the registry; h.mu must be held. It
// reports whether s was registered.
func (h *Hub) unregisterLocked(s *session) bool {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		return false
	}
	set := h.clients[s.clientID]
	delete(set, s)
	if len(set) == 0 {
		delete(h.clients, s.clientID)
	}
	return true
}

func (h *Hub) afterSessionEnd(s *session, reason string, unexpected bool) {
	if reason == "logout" && s.token != "" {
		h.unbindDevice(s)
	}
	if !h.online(s.clientID) {
		h.rooms.leaveAll(s.clientID)
		if unexpected {
			h.sendWill(s.clientID)
		}
	}
	h.runClientHook(false, &realtime.ClientEvent{ClientID: s.clientID, Tag: s.tag, DeviceID: s.deviceID, Reason: reason})
}

// tokenSigner issues and verifies stateless session tokens: an HMAC over
// the client id, tag, device id and expiry.
type tokenSigner struct{ key []byte }

type sessionToken struct {
	Client string `json:"c"`
	Tag    string `json:"t,omitempty"`
	Device string `json:"d,omitempty"`
	Expiry int64  `json:"e"`
}

var errBadToken = errors.New("bad session token")

func (t tokenSigner) mac(payload string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

func (t tokenSigner) issue(client, tag, device string, expiry time.Time) string {
	b, _ := json.Marshal(sessionToken{Client: client, Tag: tag, Device: device, Expiry: expiry.Unix()})
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + t.mac(payload)
}

func (t tokenSigner) verify(token, client string, now time.Time) (*sessionToken, error) {
	payload, mac, ok := strings.Cut(token, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(t.mac(payload))) {
		return nil, errBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, errBadToken
	}
	var st sessionToken
	if json.Unmarshal(b, &st) != nil || st.Client != client || now.Unix() > st.Expiry {
		return nil, errBadToken
	}
	return &st, nil
}

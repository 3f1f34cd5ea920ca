package hub

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// closeKind says why a socket closed; it decides whether will messages go
// out.
type closeKind int

const (
	closeDrop     closeKind = iota // network drop, ping timeout, protocol error: unexpected
	closeShutdown                  // hub shutdown: no will messages
)

// conn is one websocket. Its read loop runs in ServeHTTP; writeLoop drains
// out. Sessions of several client ids may share it.
type conn struct {
	h      *Hub
	ws     *websocket.Conn
	base64 bool
	// protocolVersion is 3 for lc.protobuf2.3 (unread notifications,
	// the JS SDK) and 1 for lc.protobuf2.1 (push-style offline sync).
	protocolVersion int
	req             *http.Request
	batch           *batchConn // nil when the server could not hijack through it
	remoteIP        string
	out             chan []byte
	quit            chan struct{} // closed once by closeWith
	once            sync.Once
	code            websocket.StatusCode
	reason          string
	kind            closeKind
	loggedIn        atomic.Bool

	mu       sync.Mutex
	sessions map[string]*session // by client id
	first    *session            // commands without peerId go here
}

func (h *Hub) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	opts := &websocket.AcceptOptions{
		Subprotocols:       []string{wire.ProtocolBinary, wire.ProtocolBase64, wire.ProtocolBinaryV1, wire.ProtocolBase64V1},
		InsecureSkipVerify: h.cfg.AllowedOrigins == nil,
		OriginPatterns:     h.cfg.AllowedOrigins,
		CompressionMode:    websocket.CompressionDisabled,
	}
	h.mu.RLock()
	closing := h.closing
	h.mu.RUnlock()
	if closing {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	hw := &hijackBatcher{ResponseWriter: w, timeout: h.cfg.WriteTimeout}
	ws, err := websocket.Accept(hw, r, opts)
	if err != nil {
		h.log.Debug("websocket accept failed", "err", err)
		return
	}
	sub := ws.Subprotocol()
	if sub == "" {
		ws.Close(websocket.StatusPolicyViolation, "subprotocol lc.protobuf2.3 or lc.proto2base64.3 required")
		return
	}
	ws.SetReadLimit(h.cfg.Limits.MaxFrameSize)
	version := 3
	if sub == wire.ProtocolBinaryV1 || sub == wire.ProtocolBase64V1 {
		version = 1
	}
	c := &conn{
		protocolVersion: version,
		h:               h,
		ws:              ws,
		base64:          sub == wire.ProtocolBase64 || sub == wire.ProtocolBase64V1,
		req:             r,
		batch:           hw.conn,
		remoteIP:        clientIP(r, h.cfg.TrustForwardedFor),
		out:             make(chan []byte, h.cfg.Limits.OutboundQueue),
		quit:            make(chan struct{}),
		sessions:        make(map[string]*session),
	}
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	h.conns[c] = struct{}{}
	h.wg.Add(2) // this handler and the writer
	h.mu.Unlock()
	defer h.wg.Done()

	writerDone := make(chan struct{})
	go func() {
		defer h.wg.Done()
		defer close(writerDone)
		c.writeLoop()
	}()
	loginTimer := time.AfterFunc(h.cfg.LoginTimeout, func() {
		if !c.loggedIn.Load() {
			c.closeWith(websocket.StatusCode(realtime.CodeLoginTimeout), "LOGIN_TIMEOUT", closeDrop)
		}
	})
	c.readLoop()
	loginTimer.Stop()
	c.closeWith(websocket.StatusNormalClosure, "", closeDrop)
	<-writerDone
	c.cleanup()
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

func (c *conn) readLoop() {
	h := c.h
	for {
		typ, frame, err := c.ws.Read(context.Background())
		if err != nil {
			if !isClosedErr(err) {
				h.log.Debug("websocket read", "err", err)
			}
			return
		}
		if (typ == websocket.MessageText) != c.base64 {
			// A frame type the negotiated subprotocol does not use: still
			// try to decode it the way its type says.
		}
		cmd, err := wire.Decode(frame, typ == websocket.MessageText)
		if err != nil {
			h.log.Debug("bad frame", "err", err, "remote", c.remoteIP)
			c.sendError(nil, realtime.ErrInvalidCommand.WithDetail("%s", err.Error()))
			continue
		}
		c.dispatch(cmd)
		select {
		case <-c.quit:
			return
		default:
		}
	}
}

// writeLoop is the only writer of c.ws. It pings the peer when the socket is
// quiet and closes the socket when quit is closed, after flushing what is
// queued.
func (c *conn) writeLoop() {
	h := c.h
	typ := websocket.MessageBinary
	if c.base64 {
		typ = websocket.MessageText
	}
	ping := time.NewTicker(h.cfg.PingInterval)
	defer ping.Stop()
	write := func(frame []byte) bool {
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.WriteTimeout)
		defer cancel()
		if err := c.ws.Write(ctx, typ, frame); err != nil {
			c.closeWith(websocket.StatusAbnormalClosure, "", closeDrop)
			return false
		}
		return true
	}
	for {
		select {
		case frame := <-c.out:
			// Drain the backlog into as few syscalls as possible.
			if c.batch != nil {
				c.batch.begin()
			}
			ok := write(frame)
			for n := len(c.out); ok && n > 0; n-- {
				ok = write(<-c.out)
			}
			if c.batch != nil {
				if err := c.batch.end(); err != nil {
					ok = false
				}
			}
			if !ok {
				c.closeWith(websocket.StatusAbnormalClosure, "", closeDrop)
				c.ws.CloseNow()
				return
			}
		case <-ping.C:
			ctx, cancel := context.WithTimeout(context.Background(), h.cfg.PingTimeout)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				h.log.Debug("ping failed; closing", "remote", c.remoteIP, "err", err)
				c.closeWith(websocket.StatusGoingAway, "ping timeout", closeDrop)
				c.ws.CloseNow()
				return
			}
		case <-c.quit:
			for {
				select {
				case frame := <-c.out:
					if !write(frame) {
						c.ws.CloseNow()
						return
					}
					continue
				default:
				}
				break
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				c.ws.Close(c.code, c.reason)
			}()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				c.ws.CloseNow()
				<-done
			}
			return
		}
	}
}

// closeWith starts closing the socket once; later calls do nothing.
func (c *conn) closeWith(code websocket.StatusCode, reason string, kind closeKind) {
	c.once.Do(func() {
		c.code, c.reason, c.kind = code, reason, kind
		close(c.quit)
	})
}

func (c *conn) closed() bool {
	select {
	case <-c.quit:
		return true
	default:
		return false
	}
}

// enqueue queues a ready frame without blocking; a full queue closes the
// socket as a slow consumer.
func (c *conn) enqueue(frame []byte) {
	if c.closed() {
		return
	}
	select {
	case c.out <- frame:
	default:
		c.h.log.Warn("slow consumer: outbound queue full, closing socket", "remote", c.remoteIP)
		c.closeWith(websocket.StatusPolicyViolation, "slow consumer", closeDrop)
	}
}

// sendCmd encodes and queues one command.
func (c *conn) sendCmd(cmd *wire.GenericCommand) {
	frame, err := wire.Encode(cmd, c.base64)
	if err != nil {
		c.h.log.Error("encode command", "err", err, "cmd", cmd.GetCmd().String())
		return
	}
	c.enqueue(frame)
}

// reply answers a request: same cmd/i/peerId unless set.
func (c *conn) reply(req *wire.GenericCommand, res *wire.GenericCommand) {
	if res.I == nil && req.I != nil {
		res.I = proto.Int32(req.GetI())
	}
	if res.PeerId == nil && req.PeerId != nil {
		res.PeerId = proto.String(req.GetPeerId())
	}
	if res.Cmd == nil {
		res.Cmd = req.Cmd
	}
	res.ServerTs = proto.Int64(c.h.nowMs())
	c.sendCmd(res)
}

// sendError answers req (which may be nil for undecodable frames) with a
// coded error. Requests without i get nothing: the SDK would not match it.
func (c *conn) sendError(req *wire.GenericCommand, err error) {
	e := realtime.AsError(err)
	if e == realtime.ErrInternal && err != nil && !errors.Is(err, realtime.ErrInternal) {
		c.h.log.Error("internal error", "err", err)
	}
	if req == nil || req.I == nil {
		return
	}
	res := &wire.GenericCommand{
		Cmd:          wire.CommandType_error.Enum(),
		ErrorMessage: errorCommand(e),
	}
	c.reply(req, res)
}

func errorCommand(e *realtime.Error) *wire.ErrorCommand {
	ec := &wire.ErrorCommand{Code: proto.Int32(int32(e.Code)), Reason: proto.String(e.Reason)}
	if e.Detail != "" {
		ec.Detail = proto.String(e.Detail)
	}
	if e.AppCode != 0 {
		ec.AppCode = proto.Int32(int32(e.AppCode))
	}
	return ec
}

// session returns the session a command is for: by peerId, else the
// socket's first session (the SDK omits peerId after the first login).
func (c *conn) session(peerID string) *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	if peerID != "" {
		return c.sessions[peerID]
	}
	return c.first
}

func (c *conn) addSession(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.sessions[s.clientID]; old != nil && c.first == old {
		c.first = s
	}
	c.sessions[s.clientID] = s
	if c.first == nil {
		c.first = s
	}
}

func (c *conn) removeSession(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessions[s.clientID] == s {
		delete(c.sessions, s.clientID)
	}
	if c.first == s {
		c.first = nil
		for _, o := range c.sessions {
			c.first = o
			break
		}
	}
}

func (c *conn) sessionCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions)
}

// cleanup ends the sessions of a closed socket.
func (c *conn) cleanup() {
	c.mu.Lock()
	ss := make([]*session, 0, len(c.sessions))
	for _, s := range c.sessions {
		ss = append(ss, s)
	}
	c.sessions = map[string]*session{}
	c.first = nil
	c.mu.Unlock()
	reason := "disconnect"
	if c.kind == closeShutdown {
		reason = "shutdown"
	}
	for _, s := range ss {
		c.h.endSession(s, reason, c.kind == closeDrop)
	}
}

func isClosedErr(err error) bool {
	if errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled) {
		return true
	}
	s := websocket.CloseStatus(err)
	return s == websocket.StatusNormalClosure || s == websocket.StatusGoingAway
}

func clientIP(r *http.Request, trustForwarded bool) string {
	if xf := r.Header.Get("X-Forwarded-For"); xf != "" && trustForwarded {
		return strings.TrimSpace(strings.Split(xf, ",")[0])
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// logAttrs returns the log attributes of a session.
func (s *session) logAttrs() []any {
	return []any{slog.String("client", s.clientID), slog.String("tag", s.tag)}
}

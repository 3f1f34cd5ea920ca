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

// A socket (conn) is one websocket. Its read loop is a goroutine of its
// own, started after the upgrade (the ServeHTTP call returns: its deep
// stack is not kept for the socket's life). Frames to send go to an
// outbox; a writer goroutine exists only while the outbox is not empty, and
// writes everything queued into one syscall when it can (writebatch.go).
// Pings and the login timeout are the hub's keeper's (keeper.go), not a
// timer per socket. So an idle logged-in socket holds its read goroutine,
// two small buffers and its structs, nothing else.

// closeKind says why a socket closed; it decides whether will messages go
// out.
type closeKind int

const (
	closeDrop     closeKind = iota // network drop, ping timeout, protocol error: unexpected
	closeShutdown                  // hub shutdown or replaced by the same device: no will messages
)

const (
	// maxInflightPerSocket bounds the commands of one socket being handled
	// at once (sends waiting for the store, queries...). Beyond it the
	// socket is not read until one finishes.
	maxInflightPerSocket = 64
	// maxBadFrames closes a socket after that many undecodable frames in a
	// row.
	maxBadFrames = 8
)

type conn struct {
	h      *Hub
	ws     *websocket.Conn
	base64 bool
	// protocolVersion is 3 for lc.protobuf2.3 (unread notifications,
	// the JS SDK) and 1 for lc.protobuf2.1 (push-style offline sync).
	protocolVersion int
	// req is the upgrade request, kept for the Authenticator (nil without
	// one: the request and its headers are a few KiB per socket).
	req      *http.Request
	batch    *batchConn
	remoteIP string

	out      outbox
	inflight chan struct{}
	serialQ  serialQueue

	quit      chan struct{} // closed once by closeWith
	closeDone chan struct{} // closed when the close frame went out
	once      sync.Once
	code      websocket.StatusCode
	reason    string
	kind      closeKind

	lastRead       atomic.Int64 // unix nanoseconds of the last frame read
	pinging        atomic.Bool
	noSessionSince atomic.Int64 // unix nanoseconds; 0 while a session is open
	nsessions      atomic.Int32

	mu       sync.Mutex
	sessions map[string]*session // by client id
	first    *session            // commands without peerId go here
	// opening has the logins in progress on this socket (they run off the
	// read loop): a later command of that client waits for its login to
	// finish, as it would have if logins ran on the read loop.
	opening map[string]chan struct{}
}

// startOpening records a login of clientID in progress; the returned
// function ends it.
func (c *conn) startOpening(clientID string) func() {
	ch := make(chan struct{})
	c.mu.Lock()
	if c.opening == nil {
		c.opening = make(map[string]chan struct{}, 1)
	}
	prev := c.opening[clientID]
	c.opening[clientID] = ch
	c.mu.Unlock()
	if prev != nil {
		<-prev // two opens of one client on one socket: in order
	}
	return func() {
		c.mu.Lock()
		if c.opening[clientID] == ch {
			delete(c.opening, clientID)
			if len(c.opening) == 0 {
				c.opening = nil // an idle socket keeps no map
			}
		}
		c.mu.Unlock()
		close(ch)
	}
}

// waitOpening waits for a login of clientID in progress on this socket
// (any login when clientID is "" and no session is open yet).
func (c *conn) waitOpening(clientID string) {
	c.mu.Lock()
	var wait []chan struct{}
	if clientID != "" {
		if ch := c.opening[clientID]; ch != nil {
			wait = append(wait, ch)
		}
	} else if c.first == nil {
		for _, ch := range c.opening {
			wait = append(wait, ch)
		}
	}
	c.mu.Unlock()
	for _, ch := range wait {
		select {
		case <-ch:
		case <-c.quit:
			return
		}
	}
}

func (h *Hub) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	opts := &websocket.AcceptOptions{
		Subprotocols:       []string{wire.ProtocolBinary, wire.ProtocolBase64, wire.ProtocolBinaryV1, wire.ProtocolBase64V1},
		InsecureSkipVerify: h.cfg.AllowedOrigins == nil,
		OriginPatterns:     h.cfg.AllowedOrigins,
		CompressionMode:    websocket.CompressionDisabled,
	}
	if h.draining.Load() || h.isClosing() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	// The socket is counted before the upgrade answers: a client that
	// has its 101 is counted when it dials again.
	remoteIP := clientIP(r, h.cfg.TrustForwardedFor)
	counted := h.limits.openSocket(remoteIP, h.cfg.Limits.MaxSocketsPerAddress)
	defer func() {
		if counted {
			h.limits.closeSocket(remoteIP)
		}
	}()
	hw := &hijackBatcher{ResponseWriter: w, timeout: h.cfg.WriteTimeout}
	ws, err := websocket.Accept(hw, r, opts)
	if err != nil {
		h.log.Debug("websocket accept failed", "err", err)
		return
	}
	if !counted {
		ws.Close(websocket.StatusTryAgainLater, "too many sockets from this address")
		return
	}
	sub := ws.Subprotocol()
	if sub == "" || hw.conn == nil {
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
		batch:           hw.conn,
		remoteIP:        remoteIP,
		inflight:        make(chan struct{}, maxInflightPerSocket),
		quit:            make(chan struct{}),
		closeDone:       make(chan struct{}),
	}
	if h.cfg.Authenticator != nil {
		c.req = r
	}
	// Socket timers run on the real clock, not Config.Clock.
	now := time.Now().UnixNano()
	c.lastRead.Store(now)
	c.noSessionSince.Store(now)
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	h.cfg.Metrics.SocketOpened()
	counted = false // serve uncounts it
	go c.serve()
}

// serve runs the read loop, then cleans up after the socket.
func (c *conn) serve() {
	h := c.h
	defer h.wg.Done()
	c.readLoop()
	c.closeWith(websocket.StatusNormalClosure, "", closeDrop)
	<-c.closeDone
	c.cleanup()
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	h.limits.closeSocket(c.remoteIP)
	h.cfg.Metrics.SocketClosed(closeReason(int(c.code), c.reason))
}

func (c *conn) readLoop() {
	h := c.h
	bad := 0
	for {
		typ, frame, err := c.ws.Read(context.Background())
		if err != nil {
			if !isClosedErr(err) {
				h.log.Debug("websocket read", "err", err, "remote", c.remoteIP)
			}
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
		cmd, err := wire.Decode(frame, typ == websocket.MessageText)
		if err != nil {
			bad++
			h.log.Debug("bad frame", "err", err, "remote", c.remoteIP)
			c.pushError(realtime.ErrInvalidCommand.WithDetail("undecodable frame: %s", err.Error()))
			if bad >= maxBadFrames {
				c.closeWith(websocket.StatusCode(realtime.CodeInvalidCommand), "too many undecodable frames", closeDrop)
				return
			}
			continue
		}
		bad = 0
		c.dispatch(cmd)
		if c.closed() {
			return
		}
	}
}

// begin takes a slot for an asynchronous command; it waits while the
// socket has maxInflightPerSocket commands in progress. end frees it.
func (c *conn) begin() bool {
	select {
	case c.inflight <- struct{}{}:
		return true
	case <-c.quit:
		return false
	}
}

func (c *conn) end() { <-c.inflight }

// serialQueue holds a socket's requests that read or change the store
// (queries, history, conversation operations, logins and logouts): they run
// off the read loop but one at a time, in the order they came, so their
// replies keep that order, as LeanCloud's server keeps it (the SDK relies on
// it: a burst of lookups for messages of one unknown conversation must be
// answered in order). A goroutine exists while the queue is not empty.
// Messages do not go through it: their order is their conversation's
// lane's.
type serialQueue struct {
	mu      sync.Mutex
	q       []func()
	running bool
}

// serial queues f behind the socket's other requests. It waits while the
// socket has maxInflightPerSocket commands in progress, and reports false
// (f does not run) once the socket is closed.
func (c *conn) serial(f func()) bool {
	if !c.begin() {
		return false
	}
	sq := &c.serialQ
	sq.mu.Lock()
	sq.q = append(sq.q, f)
	start := !sq.running
	sq.running = true
	sq.mu.Unlock()
	if start {
		c.h.wg.Add(1)
		go c.runSerial()
	}
	return true
}

func (c *conn) runSerial() {
	defer c.h.wg.Done()
	sq := &c.serialQ
	for {
		sq.mu.Lock()
		if len(sq.q) == 0 {
			sq.running = false
			sq.q = nil
			sq.mu.Unlock()
			return
		}
		f := sq.q[0]
		sq.q[0] = nil
		sq.q = sq.q[1:]
		sq.mu.Unlock()
		c.h.tasks.run(f)
		c.end()
	}
}

// outbox is a socket's queue of frames to write, bounded by count and
// bytes. It has no goroutine of its own: enqueue starts a writer when the
// outbox goes from empty to not empty, and the writer stops when it is
// empty again.
type outbox struct {
	mu      sync.Mutex
	frames  [][]byte
	bytes   int
	writing bool
	closed  bool
}

// enqueue queues a ready frame without blocking; a full outbox closes the
// socket as a slow consumer.
func (c *conn) enqueue(frame []byte) {
	o := &c.out
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	l := &c.h.cfg.Limits
	if len(o.frames) >= l.OutboundQueue || o.bytes+len(frame) > l.OutboundBytes {
		o.closed = true
		o.frames, o.bytes = nil, 0
		o.mu.Unlock()
		c.h.log.Warn("slow consumer: outbound queue full, closing socket", "remote", c.remoteIP)
		c.closeWith(websocket.StatusPolicyViolation, "slow consumer", closeDrop)
		c.ws.CloseNow()
		return
	}
	o.frames = append(o.frames, frame)
	o.bytes += len(frame)
	start := !o.writing
	o.writing = true
	o.mu.Unlock()
	if start {
		c.h.wg.Add(1)
		go c.writeOut()
	}
}

// writeOut is the writer: it takes everything queued, writes it in one
// batch (one flush), and repeats until the outbox is empty.
func (c *conn) writeOut() {
	defer c.h.wg.Done()
	typ := websocket.MessageBinary
	if c.base64 {
		typ = websocket.MessageText
	}
	var spare [][]byte
	for {
		o := &c.out
		o.mu.Lock()
		frames := o.frames
		if len(frames) == 0 || o.closed {
			o.writing = false
			o.frames = nil
			o.mu.Unlock()
			return
		}
		o.frames, o.bytes = spare[:0], 0
		o.mu.Unlock()
		c.h.cfg.Metrics.OutboundBacklog(len(frames))
		c.batch.begin()
		var err error
		for i, f := range frames {
			if err == nil {
				// Background context: the library then arms no timer per
				// frame; the batch's flush has the write deadline.
				err = c.ws.Write(context.Background(), typ, f)
			}
			frames[i] = nil
		}
		if ferr := c.batch.end(); err == nil {
			err = ferr
		}
		if err != nil {
			o.mu.Lock()
			o.closed = true
			o.writing = false
			o.frames = nil
			o.mu.Unlock()
			c.closeWith(websocket.StatusAbnormalClosure, "", closeDrop)
			c.ws.CloseNow()
			return
		}
		if cap(frames) <= 64 {
			spare = frames
		} else {
			spare = nil // do not keep a burst's slice for an idle socket
		}
	}
}

// closeWith starts closing the socket once; later calls do nothing. The
// close frame goes out after what is queued (finishClose).
func (c *conn) closeWith(code websocket.StatusCode, reason string, kind closeKind) {
	c.once.Do(func() {
		c.code, c.reason, c.kind = code, reason, kind
		close(c.quit)
		// Wake the read loop: a socket closed by the hub (kick, slow
		// consumer, ping timeout) must stop reading too.
		c.h.wg.Add(1)
		go func() {
			defer c.h.wg.Done()
			c.finishClose()
		}()
	})
}

// finishClose waits (bounded) for the outbox to drain, then sends the close
// frame and closes the connection. It runs once, started by closeWith.
func (c *conn) finishClose() {
	defer close(c.closeDone)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		c.out.mu.Lock()
		idle := !c.out.writing || c.out.closed
		c.out.mu.Unlock()
		if idle {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.out.mu.Lock()
	c.out.closed = true
	c.out.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.ws.Close(c.code, c.reason)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		c.ws.CloseNow()
		<-done
	}
}

func (c *conn) closed() bool {
	select {
	case <-c.quit:
		return true
	default:
		return false
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

// sendError answers req with a coded error. Requests without i get
// nothing: the SDK would not match it.
func (c *conn) sendError(req *wire.GenericCommand, err error) {
	e := realtime.AsError(err)
	if e == realtime.ErrInternal && err != nil && !errors.Is(err, realtime.ErrInternal) {
		if c.closing() && errors.Is(err, context.Canceled) {
			// The socket went away while its request ran: nobody to
			// tell, nothing wrong.
			c.h.log.Debug("request cut by the socket's close", "err", err, "cmd", req.GetCmd().String())
		} else {
			c.h.log.Error("internal error", "err", err, "cmd", req.GetCmd().String())
		}
	}
	if req.I == nil {
		return
	}
	c.reply(req, &wire.GenericCommand{Cmd: wire.CommandType_error.Enum(), ErrorMessage: errorCommand(e)})
}

// closing reports whether the socket is being closed.
func (c *conn) closing() bool {
	select {
	case <-c.quit:
		return true
	default:
		return false
	}
}

// pushError sends a coded error that answers no request (a frame that
// could not be decoded has no serial to answer).
func (c *conn) pushError(e *realtime.Error) {
	c.sendCmd(&wire.GenericCommand{Cmd: wire.CommandType_error.Enum(), Service: proto.Int32(2),
		ServerTs: proto.Int64(c.h.nowMs()), ErrorMessage: errorCommand(e)})
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
	if c.sessions == nil {
		c.sessions = make(map[string]*session, 1)
	}
	if old := c.sessions[s.clientID]; old != nil && c.first == old {
		c.first = s
	}
	c.sessions[s.clientID] = s
	if c.first == nil {
		c.first = s
	}
	c.nsessions.Store(int32(len(c.sessions)))
	c.noSessionSince.Store(0)
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
	c.nsessions.Store(int32(len(c.sessions)))
	if len(c.sessions) == 0 {
		c.noSessionSince.Store(time.Now().UnixNano())
	}
}

func (c *conn) sessionCount() int { return int(c.nsessions.Load()) }

// cleanup ends the sessions of a closed socket.
func (c *conn) cleanup() {
	c.mu.Lock()
	ss := make([]*session, 0, len(c.sessions))
	for _, s := range c.sessions {
		ss = append(ss, s)
	}
	c.sessions = nil
	c.first = nil
	c.nsessions.Store(0)
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

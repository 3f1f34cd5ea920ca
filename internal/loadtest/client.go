package loadtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// SDK-like defaults.
const (
	// ConfigBitmapSDK5 is what leancloud-realtime 5.x sends at login:
	// patch messages, temporary conversations, transient message acks,
	// keep notifications, partial failures, peerId omitted.
	ConfigBitmapSDK5 = 187
	// AckInterval and AckMaxPending are the receiver's delivery-ack
	// throttle; ReadInterval is how often an on-screen conversation is
	// marked read.
	AckInterval   = time.Second
	AckMaxPending = 100
	ReadInterval  = time.Second
	// requestTimeout is the SDK's command timeout.
	requestTimeout = 20 * time.Second
	// writeTimeout bounds one push-side write (ack, read).
	writeTimeout = 10 * time.Second
)

// ClientOptions are shared by the clients of one scenario.
type ClientOptions struct {
	Endpoint *Endpoint
	// Endpoints, when set, are the nodes of a deployment of several:
	// clients spread over them by index (see Client.endpoint).
	Endpoints    []*Endpoint
	AppID        string
	UA           string
	Tag          string // "" sends no tag
	ConfigBitmap int64
	// Ack sends SDK-like delivery acks for received messages; Read marks
	// their conversation read at most once per ReadInterval (the
	// conversation is on screen).
	Ack, Read bool
	// Reconnect re-logs in (r: true, session token) when the socket drops.
	Reconnect bool
	Errors    *Errors

	// OnMessage is called on the read goroutine for every direct push.
	OnMessage func(c *Client, d *wire.DirectCommand, at time.Time)
	// OnUnread is called for every unread push.
	OnUnread func(c *Client, u *wire.UnreadCommand, at time.Time)
	// OnReconnect is called (on its own goroutine) after a successful
	// re-login, so the scenario can fetch what was missed.
	OnReconnect func(c *Client)
	// OnDead is called when the socket dropped and will not come back
	// (Reconnect off, or re-login failed).
	OnDead func(c *Client, err error)
}

// Client is one SDK-like client: one socket, one client id.
type Client struct {
	ID       string
	Index    int // the scenario's number for it
	opts     *ClientOptions
	deviceID string

	conn   atomic.Pointer[Conn]
	closed atomic.Bool
	// Drops counts sockets lost without Close/Drop/Detach; Reconnects
	// the successful automatic re-logins after them.
	Drops      atomic.Int32
	Reconnects atomic.Int32

	mu        sync.Mutex
	token     string
	notifTime int64 // lastUnreadNotifTime: the newest unread push's notifTime
	acks      *Throttle
	reads     *Throttle
	life      context.Context
	cancel    context.CancelFunc
}

// NewClient makes a client; Login connects it.
func NewClient(id string, index int, o *ClientOptions) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{ID: id, Index: index, opts: o, deviceID: newUUID(),
		acks: NewThrottle(AckInterval, AckMaxPending), reads: NewThrottle(ReadInterval, 0),
		life: ctx, cancel: cancel}
}

// Token is the session token of the last login.
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// NotifTime is the client's lastUnreadNotifTime.
func (c *Client) NotifTime() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notifTime
}

// Conn is the current socket (nil before Login).
func (c *Client) Conn() *Conn { return c.conn.Load() }

// Login dials and opens the session explicitly (r: false).
func (c *Client) Login(ctx context.Context) error { return c.open(ctx, false, false) }

// Relogin dials a new socket and re-opens the session the way the SDK
// does after a drop: r: true with the session token and
// lastUnreadNotifTime.
func (c *Client) Relogin(ctx context.Context) error { return c.open(ctx, true, false) }

func (c *Client) open(ctx context.Context, reconnect, refreshRoute bool) error {
	u, err := c.endpoint().URL(ctx, refreshRoute)
	if err != nil {
		return err
	}
	conn, err := Dial(ctx, u, c.handlePush)
	if err != nil {
		return err
	}
	sm := &wire.SessionCommand{Ua: proto.String(c.opts.UA), R: proto.Bool(reconnect),
		ConfigBitmap: proto.Int64(c.opts.ConfigBitmap), DeviceId: proto.String(c.deviceID)}
	if c.opts.Tag != "" {
		sm.Tag = proto.String(c.opts.Tag)
	}
	c.mu.Lock()
	if reconnect {
		if c.token != "" {
			sm.St = proto.String(c.token)
		}
		if c.notifTime > 0 {
			sm.LastUnreadNotifTime = proto.Int64(c.notifTime)
		}
	}
	c.mu.Unlock()
	// The socket is registered before the reply arrives: the unread push
	// that follows the reply must find the client.
	c.conn.Store(conn)
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	res, err := conn.Request(rctx, &wire.GenericCommand{Cmd: wire.CommandType_session.Enum(), Op: wire.OpType_open.Enum(),
		AppId: proto.String(c.opts.AppID), PeerId: proto.String(c.ID), SessionMessage: sm})
	if err != nil {
		conn.Close()
		return fmt.Errorf("open %s: %w", c.ID, err)
	}
	c.mu.Lock()
	if st := res.GetSessionMessage().GetSt(); st != "" {
		c.token = st
	}
	c.mu.Unlock()
	go c.watch(conn)
	return nil
}

// watch waits for the socket to drop and reconnects when asked to.
func (c *Client) watch(conn *Conn) {
	<-conn.Done()
	if c.closed.Load() || c.conn.Load() != conn {
		return
	}
	err := conn.Err()
	c.Drops.Add(1)
	if !c.opts.Reconnect {
		// Without re-login a drop is an error; with it, only a failed
		// re-login is.
		if c.opts.Errors != nil {
			c.opts.Errors.Add("closed:"+strconv.Itoa(conn.CloseCode()), fmt.Sprintf("%s: %v", c.ID, err))
		}
		if c.opts.OnDead != nil {
			c.opts.OnDead(c, err)
		}
		return
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		select {
		case <-c.life.Done():
			return
		case <-time.After(backoff):
		}
		ctx, cancel := context.WithTimeout(c.life, requestTimeout)
		rerr := c.open(ctx, true, attempt > 1)
		cancel()
		if rerr == nil {
			c.Reconnects.Add(1)
			if c.opts.OnReconnect != nil {
				go c.opts.OnReconnect(c)
			}
			return
		}
		var re *realtime.Error
		if errors.As(rerr, &re) || attempt >= 20 {
			// A refused re-login (4111, 4112...) is final for the SDK too.
			if c.opts.Errors != nil {
				c.opts.Errors.Add("relogin:"+errorKey(rerr), rerr.Error())
			}
			if c.opts.OnDead != nil {
				c.opts.OnDead(c, rerr)
			}
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// Close drops the socket for good (no logout, no reconnect).
func (c *Client) Close() {
	c.closed.Store(true)
	c.cancel()
	if conn := c.conn.Load(); conn != nil {
		conn.Close()
	}
}

// Drop closes the socket without the client noticing it as final: the
// scenario reconnects it itself (Relogin).
func (c *Client) Drop() {
	if conn := c.Detach(); conn != nil {
		conn.Close()
	}
}

// Detach forgets the socket without closing it: when the server closes it
// (a restart), the client does not count it as an error nor reconnect.
func (c *Client) Detach() *Conn { return c.conn.Swap(nil) }

// Request sends a command on the current socket. After the first login
// the SDK omits peerId (configBitmap bit 128); so does this.
func (c *Client) Request(ctx context.Context, cmd *wire.GenericCommand) (*wire.GenericCommand, error) {
	conn := c.conn.Load()
	if conn == nil {
		return nil, ErrClosed
	}
	if c.opts.ConfigBitmap&128 == 0 {
		cmd.PeerId = proto.String(c.ID)
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return conn.Request(rctx, cmd)
}

func (c *Client) send(cmd *wire.GenericCommand) error {
	conn := c.conn.Load()
	if conn == nil {
		return ErrClosed
	}
	if c.opts.ConfigBitmap&128 == 0 {
		cmd.PeerId = proto.String(c.ID)
	}
	ctx, cancel := context.WithTimeout(c.life, writeTimeout)
	defer cancel()
	return conn.Send(ctx, cmd)
}

// SendResult is the server's ack of a direct.
type SendResult struct {
	ID        string
	Timestamp int64
}

// SendDirect sends a message with a fresh dt (the SDK's de-duplication
// token) and waits for the ack; it retries a 4116 (rate limited) with the
// same dt when retryQuota is set, at most until ctx ends.
func (c *Client) SendDirect(ctx context.Context, d *wire.DirectCommand, retryQuota bool) (SendResult, error) {
	if d.Dt == nil {
		d.Dt = proto.String(newUUID())
	}
	backoff := 200 * time.Millisecond
	for {
		res, err := c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_direct.Enum(), DirectMessage: d})
		if err == nil {
			a := res.GetAckMessage()
			if a.Code != nil {
				err = &realtime.Error{Code: int(a.GetCode()), Reason: a.GetReason(), AppCode: int(a.GetAppCode()), Detail: a.GetAppMsg()}
			} else {
				return SendResult{ID: a.GetUid(), Timestamp: a.GetT()}, nil
			}
		}
		var re *realtime.Error
		if !retryQuota || !errors.As(err, &re) || re.Code != realtime.CodeMessageQuotaExceeded {
			return SendResult{}, err
		}
		select {
		case <-ctx.Done():
			return SendResult{}, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// StartConversation sends conv/start (unique) with the given members (the
// creator is added; the SDK sends them sorted) and returns the id.
func (c *Client) StartConversation(ctx context.Context, name string, members []string) (string, error) {
	m := append([]string{c.ID}, members...)
	slices.Sort(m)
	cm := &wire.ConvCommand{M: m, Unique: proto.Bool(true),
		Attr: &wire.JsonObjectMessage{Data: proto.String(`{"name":` + strconv.Quote(name) + `}`)}}
	res, err := c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_start.Enum(), ConvMessage: cm})
	if err != nil {
		return "", err
	}
	cid := res.GetConvMessage().GetCid()
	if cid == "" {
		return "", errors.New("conv/start answered without cid")
	}
	return cid, nil
}

// Echo sends cmd=echo with a serial (the browsers' heartbeat) and waits for
// the answer: the server has then handled everything sent before it.
func (c *Client) Echo(ctx context.Context) error {
	_, err := c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_echo.Enum()})
	return err
}

// AddMembers sends conv/add.
func (c *Client) AddMembers(ctx context.Context, cid string, members []string) error {
	_, err := c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_add.Enum(),
		ConvMessage: &wire.ConvCommand{Cid: proto.String(cid), M: members}})
	return err
}

// History pulls messages of cid newer than ts (direction NEW), up to
// limit.
func (c *Client) History(ctx context.Context, cid string, afterTS int64, limit int) ([]*wire.LogItem, error) {
	res, err := c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_logs.Enum(), LogsMessage: &wire.LogsCommand{
		Cid: proto.String(cid), T: proto.Int64(afterTS), L: proto.Int32(int32(limit)),
		Direction: wire.QueryDirection_NEW.Enum()}})
	if err != nil {
		return nil, err
	}
	return res.GetLogsMessage().GetLogs(), nil
}

func (c *Client) handlePush(cmd *wire.GenericCommand, at time.Time) {
	switch cmd.GetCmd() {
	case wire.CommandType_direct:
		d := cmd.GetDirectMessage()
		if c.opts.OnMessage != nil {
			c.opts.OnMessage(c, d, at)
		}
		if d.GetTransient() || d.GetFromPeerId() == c.ID {
			return
		}
		if c.opts.Ack {
			c.throttled(c.acks, d.GetCid(), d.GetTimestamp(), d.GetId(), at, c.sendAck)
		}
		if c.opts.Read {
			c.throttled(c.reads, d.GetCid(), d.GetTimestamp(), d.GetId(), at, c.sendRead)
		}
	case wire.CommandType_unread:
		u := cmd.GetUnreadMessage()
		c.mu.Lock()
		if nt := u.GetNotifTime(); nt > c.notifTime {
			c.notifTime = nt
		}
		c.mu.Unlock()
		if c.opts.OnUnread != nil {
			c.opts.OnUnread(c, u, at)
		}
	case wire.CommandType_session:
		if cmd.GetOp() == wire.OpType_closed && c.opts.Errors != nil {
			sm := cmd.GetSessionMessage()
			c.opts.Errors.Add("session-closed:"+strconv.Itoa(int(sm.GetCode())), c.ID+": "+sm.GetReason())
		}
	case wire.CommandType_goaway:
		// The server is going away: the SDK re-routes and reconnects. The
		// socket close that follows triggers the reconnect.
		if ep := c.endpoint(); ep != nil {
			go ep.URL(context.Background(), true) //nolint:errcheck // best effort refresh
		}
	}
}

// throttled feeds one message to a throttle and sends or schedules.
func (c *Client) throttled(t *Throttle, cid string, ts int64, mid string, now time.Time, send func(Flush)) {
	c.mu.Lock()
	f, ok, due := t.Add(cid, ts, mid, now)
	c.mu.Unlock()
	if ok {
		send(f)
	}
	if !due.IsZero() {
		c.arm(t, cid, due, send)
	}
}

func (c *Client) arm(t *Throttle, cid string, due time.Time, send func(Flush)) {
	time.AfterFunc(time.Until(due), func() {
		if c.closed.Load() {
			return
		}
		c.mu.Lock()
		f, ok, next := t.Due(cid, time.Now())
		c.mu.Unlock()
		if ok {
			send(f)
		}
		if !next.IsZero() {
			c.arm(t, cid, next, send)
		}
	})
}

func (c *Client) sendAck(f Flush) {
	err := c.send(&wire.GenericCommand{Cmd: wire.CommandType_ack.Enum(),
		AckMessage: &wire.AckCommand{Cid: proto.String(f.ConvID), Fromts: proto.Int64(f.FromTS), Tots: proto.Int64(f.ToTS)}})
	if err != nil && !errors.Is(err, ErrClosed) && c.opts.Errors != nil && !c.closed.Load() {
		c.opts.Errors.Add("ack-write", err.Error())
	}
}

func (c *Client) sendRead(f Flush) {
	rt := &wire.ReadTuple{Cid: proto.String(f.ConvID), Timestamp: proto.Int64(f.ToTS)}
	if f.ToMID != "" {
		rt.Mid = proto.String(f.ToMID)
	}
	err := c.send(&wire.GenericCommand{Cmd: wire.CommandType_read.Enum(), ReadMessage: &wire.ReadCommand{Convs: []*wire.ReadTuple{rt}}})
	if err != nil && !errors.Is(err, ErrClosed) && c.opts.Errors != nil && !c.closed.Load() {
		c.opts.Errors.Add("read-write", err.Error())
	}
}

// endpoint is the deployment node this client connects to: with several
// (ClientOptions.Endpoints) client i uses node i mod n (the sender, index
// -1, the first).
func (c *Client) endpoint() *Endpoint {
	if n := len(c.opts.Endpoints); n > 0 {
		return c.opts.Endpoints[max(c.Index, 0)%n]
	}
	return c.opts.Endpoint
}

// Package lcclient is a client of LeanCloud's realtime protocol at the wire
// level: it sends and receives wire.GenericCommand values over one
// websocket, matching replies to requests by serial the way the official
// SDKs do. The project's own tests and its load tool use it; host
// applications use the domain-typed hub/hubtest instead.
package lcclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// Option configures Dial.
type Option func(*dialOptions)

type dialOptions struct {
	subprotocol string
	header      http.Header
}

// Base64 makes the client use the lc.proto2base64.3 text subprotocol.
func Base64() Option { return func(o *dialOptions) { o.subprotocol = wire.ProtocolBase64 } }

// Subprotocol sets the subprotocol offered.
func Subprotocol(p string) Option { return func(o *dialOptions) { o.subprotocol = p } }

// Header adds HTTP headers to the upgrade request.
func Header(h http.Header) Option { return func(o *dialOptions) { o.header = h } }

// Client is one websocket speaking the LeanCloud protocol. Replies are
// matched to requests by serial; everything else is a push, read with Next.
// Safe for concurrent use.
type Client struct {
	ws       *websocket.Conn
	base64   bool
	AppID    string
	ClientID string // of the last Open

	mu      sync.Mutex
	serial  int32
	waiting map[int32]chan *wire.GenericCommand
	pushes  chan *wire.GenericCommand
	done    chan struct{}
	err     error
}

// ErrClosed is returned once the socket is closed.
var ErrClosed = errors.New("lcclient: connection closed")

// Dial connects to a hub's websocket URL.
func Dial(ctx context.Context, url string, opts ...Option) (*Client, error) {
	o := dialOptions{subprotocol: wire.ProtocolBinary}
	for _, f := range opts {
		f(&o)
	}
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{o.subprotocol}, HTTPHeader: o.header})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	c := &Client{
		ws:      ws,
		base64:  strings.HasPrefix(ws.Subprotocol(), "lc.proto2base64"),
		waiting: make(map[int32]chan *wire.GenericCommand),
		pushes:  make(chan *wire.GenericCommand, 4096),
		done:    make(chan struct{}),
		AppID:   "lcclient",
	}
	go c.readLoop()
	return c, nil
}

func (c *Client) readLoop() {
	defer close(c.done)
	for {
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		cmd, err := wire.Decode(b, typ == websocket.MessageText)
		if err != nil {
			continue
		}
		if cmd.I != nil {
			c.mu.Lock()
			ch := c.waiting[cmd.GetI()]
			delete(c.waiting, cmd.GetI())
			c.mu.Unlock()
			if ch != nil {
				ch <- cmd
				continue
			}
		}
		select {
		case c.pushes <- cmd:
		default: // a test that never reads pushes must not block the socket
		}
	}
}

// CloseStatus returns the websocket close code the server sent, once the
// socket is closed (-1 before).
func (c *Client) CloseStatus() websocket.StatusCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return websocket.CloseStatus(c.err)
}

// Done is closed when the socket is closed.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close closes the socket (no logout: will messages fire).
func (c *Client) Close() { c.ws.CloseNow() }

// Send writes a command without waiting for anything.
func (c *Client) Send(ctx context.Context, cmd *wire.GenericCommand) error {
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(cmd)
	if err != nil {
		return err
	}
	return c.SendRaw(ctx, b)
}

// SendRaw writes raw bytes as one frame (base64-encoded on the text
// subprotocol).
func (c *Client) SendRaw(ctx context.Context, b []byte) error {
	if c.base64 {
		return c.ws.Write(ctx, websocket.MessageText, []byte(base64Std(b)))
	}
	return c.ws.Write(ctx, websocket.MessageBinary, b)
}

// WriteFrame writes a frame of the given type as is.
func (c *Client) WriteFrame(ctx context.Context, typ websocket.MessageType, b []byte) error {
	return c.ws.Write(ctx, typ, b)
}

// Request sends cmd with a new serial and waits for the reply. A reply
// with cmd=error is returned as a *realtime.Error.
func (c *Client) Request(ctx context.Context, cmd *wire.GenericCommand) (*wire.GenericCommand, error) {
	ch := make(chan *wire.GenericCommand, 1)
	c.mu.Lock()
	c.serial++
	i := c.serial
	c.waiting[i] = ch
	c.mu.Unlock()
	cmd.I = proto.Int32(i)
	if cmd.AppId == nil {
		cmd.AppId = proto.String(c.AppID)
	}
	if err := c.Send(ctx, cmd); err != nil {
		return nil, err
	}
	select {
	case res := <-ch:
		if res.GetCmd() == wire.CommandType_error {
			e := res.GetErrorMessage()
			return res, &realtime.Error{Code: int(e.GetCode()), Reason: e.GetReason(), Detail: e.GetDetail(), AppCode: int(e.GetAppCode())}
		}
		return res, nil
	case <-c.done:
		return nil, ErrClosed
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waiting, i)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// Next returns the next push (a command without serial).
func (c *Client) Next(ctx context.Context) (*wire.GenericCommand, error) {
	select {
	case p := <-c.pushes:
		return p, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		select {
		case p := <-c.pushes:
			return p, nil
		default:
		}
		return nil, ErrClosed
	}
}

// NextOf returns the next push of the given command type, dropping others.
func (c *Client) NextOf(ctx context.Context, typ wire.CommandType) (*wire.GenericCommand, error) {
	for {
		p, err := c.Next(ctx)
		if err != nil {
			return nil, err
		}
		if p.GetCmd() == typ {
			return p, nil
		}
	}
}

// OpenOptions are the session open fields.
type OpenOptions struct {
	Tag                 string
	DeviceID            string
	Reconnect           bool
	SessionToken        string
	LastUnreadNotifTime int64
	LastPatchTime       int64
	ConfigBitmap        int64
	DeviceToken         string
	Signature           string
	Timestamp           int64
	Nonce               string
}

// Open opens a session for clientID and returns the session token.
func (c *Client) Open(ctx context.Context, clientID string, o OpenOptions) (string, error) {
	sm := &wire.SessionCommand{Ua: proto.String("lcclient/1"), R: proto.Bool(o.Reconnect), ConfigBitmap: proto.Int64(o.ConfigBitmap)}
	if o.Tag != "" {
		sm.Tag = proto.String(o.Tag)
	}
	if o.DeviceID != "" {
		sm.DeviceId = proto.String(o.DeviceID)
	}
	if o.SessionToken != "" {
		sm.St = proto.String(o.SessionToken)
	}
	if o.LastUnreadNotifTime != 0 {
		sm.LastUnreadNotifTime = proto.Int64(o.LastUnreadNotifTime)
	}
	if o.LastPatchTime != 0 {
		sm.LastPatchTime = proto.Int64(o.LastPatchTime)
	}
	if o.DeviceToken != "" {
		sm.DeviceToken = proto.String(o.DeviceToken)
	}
	if o.Signature != "" {
		sm.S, sm.T, sm.N = proto.String(o.Signature), proto.Int64(o.Timestamp), proto.String(o.Nonce)
	}
	res, err := c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_session.Enum(), Op: wire.OpType_open.Enum(),
		PeerId: proto.String(clientID), SessionMessage: sm})
	if err != nil {
		return "", err
	}
	c.ClientID = clientID
	return res.GetSessionMessage().GetSt(), nil
}

// Logout closes the session (client.close() in the SDK).
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_session.Enum(), Op: wire.OpType_close.Enum(), PeerId: proto.String(c.ClientID)})
	return err
}

// StartConversation creates (or, unique, finds) a conversation with the
// given other members and returns its id.
func (c *Client) StartConversation(ctx context.Context, members ...string) (string, error) {
	return c.StartConversationWith(ctx, &wire.ConvCommand{M: append(members, c.ClientID), Unique: proto.Bool(true)})
}

// StartConversationWith sends conv/start with cm as is (PeerId set).
func (c *Client) StartConversationWith(ctx context.Context, cm *wire.ConvCommand) (string, error) {
	res, err := c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_start.Enum(),
		PeerId: proto.String(c.ClientID), ConvMessage: cm})
	if err != nil {
		return "", err
	}
	return res.GetConvMessage().GetCid(), nil
}

// SendResult is the server's ack of a send.
type SendResult struct {
	ID        string
	Timestamp int64
}

// SendText sends a TextMessage body ({"_lctype":-1,"_lctext":text}).
func (c *Client) SendText(ctx context.Context, convID, text string) (SendResult, error) {
	b, _ := json.Marshal(map[string]any{"_lctype": -1, "_lctext": text})
	return c.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(convID), Msg: proto.String(string(b)), Dt: proto.String(newDT())})
}

// SendDirect sends a direct command and waits for the ack.
func (c *Client) SendDirect(ctx context.Context, d *wire.DirectCommand) (SendResult, error) {
	res, err := c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_direct.Enum(), PeerId: proto.String(c.ClientID), DirectMessage: d})
	if err != nil {
		return SendResult{}, err
	}
	a := res.GetAckMessage()
	if a.Code != nil {
		return SendResult{}, &realtime.Error{Code: int(a.GetCode()), Reason: a.GetReason(), AppCode: int(a.GetAppCode()), Detail: a.GetAppMsg()}
	}
	return SendResult{ID: a.GetUid(), Timestamp: a.GetT()}, nil
}

// Message is a delivered message.
type Message struct {
	ID, ConvID, From, Data string
	Timestamp              int64
	MentionAll             bool
	MentionPids            []string
	Transient              bool
}

// NextMessage waits for the next direct push.
func (c *Client) NextMessage(ctx context.Context) (*Message, error) {
	p, err := c.NextOf(ctx, wire.CommandType_direct)
	if err != nil {
		return nil, err
	}
	d := p.GetDirectMessage()
	return &Message{ID: d.GetId(), ConvID: d.GetCid(), From: d.GetFromPeerId(), Data: d.GetMsg(), Timestamp: d.GetTimestamp(),
		MentionAll: d.GetMentionAll(), MentionPids: d.GetMentionPids(), Transient: d.GetTransient()}, nil
}

// Ack acknowledges delivery of messages in a conversation up to tots.
func (c *Client) Ack(ctx context.Context, convID string, fromts, tots int64) error {
	return c.Send(ctx, &wire.GenericCommand{Cmd: wire.CommandType_ack.Enum(), PeerId: proto.String(c.ClientID),
		AckMessage: &wire.AckCommand{Cid: proto.String(convID), Fromts: proto.Int64(fromts), Tots: proto.Int64(tots)}})
}

// Read marks a conversation read up to ts (0: everything).
func (c *Client) Read(ctx context.Context, convID string, ts int64) error {
	rt := &wire.ReadTuple{Cid: proto.String(convID)}
	if ts > 0 {
		rt.Timestamp = proto.Int64(ts)
	}
	return c.Send(ctx, &wire.GenericCommand{Cmd: wire.CommandType_read.Enum(), PeerId: proto.String(c.ClientID),
		ReadMessage: &wire.ReadCommand{Convs: []*wire.ReadTuple{rt}}})
}

// History queries messages (logs) and returns them as items.
func (c *Client) History(ctx context.Context, l *wire.LogsCommand) ([]*wire.LogItem, error) {
	res, err := c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_logs.Enum(), PeerId: proto.String(c.ClientID), LogsMessage: l})
	if err != nil {
		return nil, err
	}
	return res.GetLogsMessage().GetLogs(), nil
}

var dtMu sync.Mutex
var dtSeq int64

func newDT() string {
	dtMu.Lock()
	defer dtMu.Unlock()
	dtSeq++
	return fmt.Sprintf("lc-%d-%d", time.Now().UnixNano(), dtSeq)
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

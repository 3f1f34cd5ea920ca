// Package hubtest helps test code that uses a hub: NewServer starts a Hub on
// an httptest.Server (mounted at /im, as an app would), and Client speaks
// LeanCloud's realtime protocol to it the way the official SDKs do, so host
// applications can test their hooks and configuration without a JS runtime.
// Every method takes and returns the domain types of package realtime.
//
//	srv := hubtest.NewServer(t, st, &hub.Config{Hooks: []any{myHook}})
//	tom := srv.Login(t, "Tom")
//	jerry := srv.Login(t, "Jerry")
//	conv, _ := tom.StartConversation(ctx, "Jerry")
//	tom.SendText(ctx, conv, "hello")
//	msg, _ := jerry.NextMessage(ctx)
package hubtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

// Server is a Hub on an httptest.Server.
type Server struct {
	Hub  *hub.Hub
	HTTP *httptest.Server
	// AppID is the app id clients send ("hubtest" unless the Config says).
	AppID string
}

// NewServer starts a hub serving st under /im and stops it (not st) when
// the test ends.
func NewServer(t testing.TB, st realtime.Store, cfg *hub.Config) *Server {
	t.Helper()
	c := hub.Config{}
	if cfg != nil {
		c = *cfg
	}
	h, err := hub.New(st, &c)
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	r := chi.NewRouter()
	r.Mount("/im", h)
	srv := httptest.NewServer(r)
	s := &Server{Hub: h, HTTP: srv, AppID: c.AppID}
	if s.AppID == "" {
		s.AppID = "hubtest"
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("hub shutdown: %v", err)
		}
		srv.Close()
	})
	return s
}

// URL is the SDK's server option: the http URL of the mount.
func (s *Server) URL() string { return s.HTTP.URL + "/im" }

// WebsocketURL is the websocket endpoint.
func (s *Server) WebsocketURL() string {
	return "ws" + strings.TrimPrefix(s.HTTP.URL, "http") + "/im/ws"
}

// Login dials a new socket and opens a session for clientID, failing the
// test on error. The client is closed when the test ends.
func (s *Server) Login(t testing.TB, clientID string, opts ...Option) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, s.WebsocketURL(), opts...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(c.Close)
	c.c.AppID = s.AppID
	if _, err := c.Open(ctx, clientID, OpenOptions{}); err != nil {
		t.Fatalf("open %s: %v", clientID, err)
	}
	return c
}

// Option configures Dial.
type Option func(*dialOptions)

type dialOptions struct {
	base64 bool
	header http.Header
	appID  string
}

// Base64 makes the client use the lc.proto2base64.3 text subprotocol (the
// SDK's noBinary option).
func Base64() Option { return func(o *dialOptions) { o.base64 = true } }

// Header adds HTTP headers (cookies, authorization) to the upgrade request.
func Header(h http.Header) Option { return func(o *dialOptions) { o.header = h } }

// AppID sets the app id sent at login (default "hubtest").
func AppID(id string) Option { return func(o *dialOptions) { o.appID = id } }

// Client is one websocket speaking the LeanCloud protocol, logged in as one
// client id. Safe for concurrent use.
type Client struct {
	c *lcclient.Client
}

// ErrClosed is returned once the socket is closed.
var ErrClosed = lcclient.ErrClosed

// Dial connects to a hub's websocket URL (Server.WebsocketURL).
func Dial(ctx context.Context, url string, opts ...Option) (*Client, error) {
	var o dialOptions
	for _, f := range opts {
		f(&o)
	}
	var lo []lcclient.Option
	if o.base64 {
		lo = append(lo, lcclient.Base64())
	}
	if o.header != nil {
		lo = append(lo, lcclient.Header(o.header))
	}
	c, err := lcclient.Dial(ctx, url, lo...)
	if err != nil {
		return nil, err
	}
	if o.appID != "" {
		c.AppID = o.appID
	}
	return &Client{c: c}, nil
}

// ClientID is the id of the last successful Open.
func (c *Client) ClientID() string { return c.c.ClientID }

// Close closes the socket without logging out: the client's will message
// fires, as when a phone loses its network.
func (c *Client) Close() { c.c.Close() }

// Done is closed when the socket is closed.
func (c *Client) Done() <-chan struct{} { return c.c.Done() }

// CloseCode is the websocket close code the server sent, once the socket
// is closed (-1 before).
func (c *Client) CloseCode() int { return int(c.c.CloseStatus()) }

// OpenOptions are the fields of a login.
type OpenOptions struct {
	Tag          string // device tag: a second login with the same tag kicks this one (4111)
	DeviceID     string
	Reconnect    bool   // the SDK's automatic re-login
	SessionToken string // from an earlier Open, for Reconnect
	// LastUnreadNotifTime and LastPatchTime are what a reconnecting SDK
	// sends: only changes after them are replayed.
	LastUnreadNotifTime int64
	LastPatchTime       int64
	// GroupReceipts asks for receipts in group conversations too.
	GroupReceipts bool
	// Signature, Timestamp and Nonce are a login signature
	// (hub.LoginSignatureMessage).
	Signature string
	Timestamp int64
	Nonce     string
}

// Open logs clientID in and returns its session token. Refusals are
// *realtime.Error values with the hub's code.
func (c *Client) Open(ctx context.Context, clientID string, o OpenOptions) (string, error) {
	var bitmap int64
	if o.GroupReceipts {
		bitmap |= 64
	}
	return c.c.Open(ctx, clientID, lcclient.OpenOptions{
		Tag: o.Tag, DeviceID: o.DeviceID, Reconnect: o.Reconnect, SessionToken: o.SessionToken,
		LastUnreadNotifTime: o.LastUnreadNotifTime, LastPatchTime: o.LastPatchTime, ConfigBitmap: bitmap,
		Signature: o.Signature, Timestamp: o.Timestamp, Nonce: o.Nonce,
	})
}

// Logout closes the session (client.close() in the SDK): no will message.
func (c *Client) Logout(ctx context.Context) error { return c.c.Logout(ctx) }

// StartConversation creates (or, as the SDK does by default, finds the
// unique) conversation of this client with the given members and returns
// its id.
func (c *Client) StartConversation(ctx context.Context, members ...string) (string, error) {
	return c.c.StartConversation(ctx, members...)
}

// ConversationOptions describe a conversation to create.
type ConversationOptions struct {
	Members   []string
	Name      string
	Attrs     map[string]any
	Unique    bool
	Transient bool // a chat room
	Temporary bool
	// TemporaryTTL is a temporary conversation's lifetime (default 1 day).
	TemporaryTTL time.Duration
}

// CreateConversation creates a conversation and returns its id.
func (c *Client) CreateConversation(ctx context.Context, o ConversationOptions) (string, error) {
	attrs := map[string]any{}
	for k, v := range o.Attrs {
		attrs[k] = v
	}
	if o.Name != "" {
		attrs["name"] = o.Name
	}
	cm := &wire.ConvCommand{M: append(append([]string(nil), o.Members...), c.c.ClientID),
		Unique: proto.Bool(o.Unique), Transient: proto.Bool(o.Transient)}
	if len(attrs) > 0 {
		b, err := json.Marshal(attrs)
		if err != nil {
			return "", err
		}
		cm.Attr = &wire.JsonObjectMessage{Data: proto.String(string(b))}
	}
	if o.Temporary {
		cm.TempConv = proto.Bool(true)
		if o.TemporaryTTL > 0 {
			cm.TempConvTTL = proto.Int32(int32(o.TemporaryTTL / time.Second))
		}
	}
	return c.c.StartConversationWith(ctx, cm)
}

// Join adds this client to a conversation (conversation.join()).
func (c *Client) Join(ctx context.Context, convID string) error {
	return c.members(ctx, wire.OpType_add, convID, nil)
}

// Quit removes this client from a conversation (conversation.quit()).
func (c *Client) Quit(ctx context.Context, convID string) error {
	return c.members(ctx, wire.OpType_remove, convID, nil)
}

// AddMembers adds others to a conversation.
func (c *Client) AddMembers(ctx context.Context, convID string, ids ...string) error {
	return c.members(ctx, wire.OpType_add, convID, ids)
}

// RemoveMembers removes others from a conversation.
func (c *Client) RemoveMembers(ctx context.Context, convID string, ids ...string) error {
	return c.members(ctx, wire.OpType_remove, convID, ids)
}

func (c *Client) members(ctx context.Context, op wire.OpType, convID string, ids []string) error {
	if ids == nil {
		ids = []string{c.c.ClientID}
	}
	_, err := c.c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: op.Enum(),
		PeerId: proto.String(c.c.ClientID), ConvMessage: &wire.ConvCommand{Cid: proto.String(convID), M: ids}})
	return err
}

// SendOptions are a message's flags.
type SendOptions struct {
	MentionAll  bool
	MentionPids []string
	Receipt     bool // ask for delivery and read receipts
	Transient   bool // online members only, never stored
	Will        bool // keep as this client's will message
	PushData    string
	// ClientMsgID is the de-duplication key the SDK generates per message;
	// default a new one. Sending twice with the same one stores one
	// message.
	ClientMsgID string
}

// SendResult is the server's ack of a send.
type SendResult struct {
	ID        string
	Timestamp int64
}

// Send sends body (plain text or a typed-message JSON body such as
// typedmsg.NewText("hi").Encode()) and waits for the ack. A refused send
// is a *realtime.Error with the hub's code.
func (c *Client) Send(ctx context.Context, convID, body string, o SendOptions) (SendResult, error) {
	d := &wire.DirectCommand{Cid: proto.String(convID), Msg: proto.String(body),
		R: proto.Bool(o.Receipt), Transient: proto.Bool(o.Transient), Will: proto.Bool(o.Will),
		MentionAll: proto.Bool(o.MentionAll), MentionPids: o.MentionPids}
	if o.PushData != "" {
		d.PushData = proto.String(o.PushData)
	}
	if o.ClientMsgID != "" {
		d.Dt = proto.String(o.ClientMsgID)
	} else {
		d.Dt = proto.String(newDT())
	}
	r, err := c.c.SendDirect(ctx, d)
	return SendResult(r), err
}

// SendText sends a TextMessage ({"_lctype":-1,"_lctext":text}).
func (c *Client) SendText(ctx context.Context, convID, text string) (SendResult, error) {
	r, err := c.c.SendText(ctx, convID, text)
	return SendResult(r), err
}

// NextMessage waits for the next message pushed to this client (other
// pushes are dropped). Transient is set for transient messages.
func (c *Client) NextMessage(ctx context.Context) (*realtime.Message, error) {
	p, err := c.c.NextOf(ctx, wire.CommandType_direct)
	if err != nil {
		return nil, err
	}
	return directMessage(p.GetDirectMessage()), nil
}

func directMessage(d *wire.DirectCommand) *realtime.Message {
	return &realtime.Message{ID: d.GetId(), ConvID: d.GetCid(), From: d.GetFromPeerId(), Data: d.GetMsg(),
		Binary: d.GetBinaryMsg(), Timestamp: d.GetTimestamp(), MentionAll: d.GetMentionAll(),
		MentionPids: d.GetMentionPids(), Transient: d.GetTransient(), PatchTimestamp: d.GetPatchTimestamp()}
}

// Event is something pushed to a client other than a message.
type Event struct {
	// Kind names it: "message", "patch" (an edit or recall: Message is the
	// message as it now is), "unread" (Unread), "receipt" (Receipt),
	// "joined", "left", "members-joined", "members-left", "updated" (a
	// conversation change: ConvID, InitBy, Members), "session-closed"
	// (kicked: Code), "goaway", or the command name for anything else.
	Kind    string
	ConvID  string
	InitBy  string
	Members []string
	Message *realtime.Message
	Unread  []realtime.UnreadTuple
	Receipt *Receipt
	Code    int
}

// Receipt is a delivery or read receipt.
type Receipt struct {
	ConvID, MessageID, From string
	Timestamp               int64
	Read                    bool
}

// NextEvent waits for the next push of any kind.
func (c *Client) NextEvent(ctx context.Context) (*Event, error) {
	p, err := c.c.Next(ctx)
	if err != nil {
		return nil, err
	}
	return event(p), nil
}

// WaitEvent waits for the next push of the given kind, dropping others.
func (c *Client) WaitEvent(ctx context.Context, kind string) (*Event, error) {
	for {
		ev, err := c.NextEvent(ctx)
		if err != nil {
			return nil, err
		}
		if ev.Kind == kind {
			return ev, nil
		}
	}
}

func event(p *wire.GenericCommand) *Event {
	switch p.GetCmd() {
	case wire.CommandType_direct:
		m := directMessage(p.GetDirectMessage())
		return &Event{Kind: "message", ConvID: m.ConvID, Message: m}
	case wire.CommandType_patch:
		ev := &Event{Kind: "patch"}
		if ps := p.GetPatchMessage().GetPatches(); len(ps) > 0 {
			it := ps[0]
			ev.ConvID = it.GetCid()
			ev.Message = &realtime.Message{ID: it.GetMid(), ConvID: it.GetCid(), From: it.GetFrom(), Data: it.GetData(),
				Binary: it.GetBinaryMsg(), Timestamp: it.GetTimestamp(), Recalled: it.GetRecall(),
				MentionAll: it.GetMentionAll(), MentionPids: it.GetMentionPids(), PatchTimestamp: it.GetPatchTimestamp(),
				PatchCode: int(it.GetPatchCode()), PatchReason: it.GetPatchReason()}
		}
		return ev
	case wire.CommandType_unread:
		ev := &Event{Kind: "unread"}
		for _, t := range p.GetUnreadMessage().GetConvs() {
			u := realtime.UnreadTuple{ConvID: t.GetCid(), Unread: int(t.GetUnread()), Mentioned: t.GetMentioned()}
			if t.Mid != nil {
				u.Last = &realtime.Message{ID: t.GetMid(), ConvID: t.GetCid(), From: t.GetFrom(), Data: t.GetData(),
					Binary: t.GetBinaryMsg(), Timestamp: t.GetTimestamp(), PatchTimestamp: t.GetPatchTimestamp()}
			}
			ev.Unread = append(ev.Unread, u)
		}
		return ev
	case wire.CommandType_rcp:
		r := p.GetRcpMessage()
		return &Event{Kind: "receipt", ConvID: r.GetCid(), Receipt: &Receipt{ConvID: r.GetCid(), MessageID: r.GetId(),
			From: r.GetFrom(), Timestamp: r.GetT(), Read: r.GetRead()}}
	case wire.CommandType_conv:
		cm := p.GetConvMessage()
		kinds := map[wire.OpType]string{wire.OpType_joined: "joined", wire.OpType_left: "left",
			wire.OpType_members_joined: "members-joined", wire.OpType_members_left: "members-left",
			wire.OpType_updated: "updated"}
		kind := kinds[p.GetOp()]
		if kind == "" {
			kind = "conv-" + p.GetOp().String()
		}
		return &Event{Kind: kind, ConvID: cm.GetCid(), InitBy: cm.GetInitBy(), Members: cm.GetM()}
	case wire.CommandType_session:
		return &Event{Kind: "session-" + p.GetOp().String(), Code: int(p.GetSessionMessage().GetCode())}
	case wire.CommandType_goaway:
		return &Event{Kind: "goaway"}
	}
	return &Event{Kind: p.GetCmd().String()}
}

// Ack acknowledges delivery of a conversation's messages up to tots, as
// the SDK does for every message it receives.
func (c *Client) Ack(ctx context.Context, convID string, fromts, tots int64) error {
	return c.c.Ack(ctx, convID, fromts, tots)
}

// Read marks a conversation read up to ts (0: everything), as
// conversation.read() does.
func (c *Client) Read(ctx context.Context, convID string, ts int64) error {
	return c.c.Read(ctx, convID, ts)
}

// HistoryOptions select a page of history (conversation.queryMessages).
type HistoryOptions struct {
	// Before pages back in time from this timestamp (exclusive; 0: the
	// newest). With Newer set it is the start of a page forward in time.
	Before int64
	Newer  bool
	Limit  int // default 20
	Type   int // keep only typed messages of this _lctype
}

// History returns a page of a conversation's stored messages, oldest
// first.
func (c *Client) History(ctx context.Context, convID string, o HistoryOptions) ([]*realtime.Message, error) {
	l := &wire.LogsCommand{Cid: proto.String(convID)}
	if o.Before > 0 {
		l.T = proto.Int64(o.Before)
	}
	if o.Limit > 0 {
		l.L = proto.Int32(int32(o.Limit))
	}
	if o.Newer {
		l.Direction = wire.QueryDirection_NEW.Enum()
	}
	if o.Type != 0 {
		l.Lctype = proto.Int32(int32(o.Type))
	}
	items, err := c.c.History(ctx, l)
	if err != nil {
		return nil, err
	}
	out := make([]*realtime.Message, 0, len(items))
	for _, it := range items {
		m := &realtime.Message{ID: it.GetMsgId(), ConvID: convID, From: it.GetFrom(), Timestamp: it.GetTimestamp(),
			MentionAll: it.GetMentionAll(), MentionPids: it.GetMentionPids(), PatchTimestamp: it.GetPatchTimestamp()}
		if it.GetBin() {
			b, err := base64.StdEncoding.DecodeString(it.GetData())
			if err != nil {
				return nil, errors.New("hubtest: bad binary body in history")
			}
			m.Binary = b
		} else {
			m.Data = it.GetData()
		}
		out = append(out, m)
	}
	return out, nil
}

// Edit replaces the body of one of this client's messages.
func (c *Client) Edit(ctx context.Context, convID, msgID string, timestamp int64, body string) error {
	return c.patch(ctx, &wire.PatchItem{Cid: proto.String(convID), Mid: proto.String(msgID),
		Timestamp: proto.Int64(timestamp), Data: proto.String(body)})
}

// Recall recalls one of this client's messages.
func (c *Client) Recall(ctx context.Context, convID, msgID string, timestamp int64) error {
	return c.patch(ctx, &wire.PatchItem{Cid: proto.String(convID), Mid: proto.String(msgID),
		Timestamp: proto.Int64(timestamp), Recall: proto.Bool(true)})
}

func (c *Client) patch(ctx context.Context, it *wire.PatchItem) error {
	_, err := c.c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_patch.Enum(), Op: wire.OpType_modify.Enum(),
		PeerId: proto.String(c.c.ClientID), PatchMessage: &wire.PatchCommand{Patches: []*wire.PatchItem{it}}})
	return err
}

// Online reports which of ids have a live session (client.ping).
func (c *Client) Online(ctx context.Context, ids ...string) ([]string, error) {
	res, err := c.c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_session.Enum(), Op: wire.OpType_query.Enum(),
		PeerId: proto.String(c.c.ClientID), SessionMessage: &wire.SessionCommand{SessionPeerIds: ids}})
	if err != nil {
		return nil, err
	}
	return res.GetSessionMessage().GetOnlineSessionPeerIds(), nil
}

func newDT() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "hubtest-" + base64.RawURLEncoding.EncodeToString(b[:])
}

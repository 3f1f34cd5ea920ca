package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// Endpoint finds the websocket URL of a deployment the way the JS SDK 5.x
// does: GET {server}/v1/route?appId=..&secure=true, cached for the ttl the
// router gives; or a fixed websocket URL (the SDK's RTMServers option).
// Safe for concurrent use.
type Endpoint struct {
	// Server is the SDK's server option (http or https URL of the mount).
	Server string
	// WS, when set, is used as is and the router is not asked.
	WS    string
	AppID string
	// HTTP defaults to a client with a 10 s timeout.
	HTTP *http.Client

	mu      sync.Mutex
	cached  string
	expires time.Time
}

type routeAnswer struct {
	Server    string `json:"server"`
	Secondary string `json:"secondary"`
	TTL       int    `json:"ttl"`
}

// URL returns the websocket URL, asking the router when nothing fresh is
// cached or refresh is set (after a goaway).
func (e *Endpoint) URL(ctx context.Context, refresh bool) (string, error) {
	if e.WS != "" {
		return e.WS, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !refresh && e.cached != "" && time.Now().Before(e.expires) {
		return e.cached, nil
	}
	a, err := e.route(ctx)
	if err != nil {
		return "", err
	}
	ttl := time.Duration(a.TTL) * time.Second
	if ttl <= 0 {
		ttl = time.Hour
	}
	e.cached, e.expires = a.Server, time.Now().Add(ttl)
	return a.Server, nil
}

// Ping asks the router once (no cache) and reports whether it answered
// with a websocket URL.
func (e *Endpoint) Ping(ctx context.Context) error {
	if e.WS != "" {
		u := strings.Replace(strings.Replace(e.WS, "wss://", "https://", 1), "ws://", "http://", 1)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		res, err := e.client().Do(req)
		if err != nil {
			return err
		}
		res.Body.Close()
		return nil // any HTTP answer: the server is up
	}
	_, err := e.route(ctx)
	return err
}

func (e *Endpoint) client() *http.Client {
	if e.HTTP != nil {
		return e.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

func (e *Endpoint) route(ctx context.Context) (routeAnswer, error) {
	var a routeAnswer
	q := url.Values{}
	q.Set("appId", e.AppID)
	q.Set("secure", "true")
	q.Set("_t", strconv.FormatInt(time.Now().UnixMilli(), 10))
	u := strings.TrimSuffix(e.Server, "/") + "/v1/route?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return a, err
	}
	res, err := e.client().Do(req)
	if err != nil {
		return a, fmt.Errorf("router: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return a, fmt.Errorf("router: GET %s: %s", u, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(&a); err != nil {
		return a, fmt.Errorf("router: bad answer: %w", err)
	}
	if a.Server == "" {
		return a, errors.New("router: answer without server")
	}
	return a, nil
}

// Conn is one websocket speaking lc.protobuf2.3. Replies are matched to
// requests by serial; every other frame goes to the push handler, called
// on the read goroutine with the time the frame was read. Safe for
// concurrent use.
type Conn struct {
	ws     *websocket.Conn
	onPush func(cmd *wire.GenericCommand, at time.Time)

	mu      sync.Mutex
	serial  int32
	waiting map[int32]chan *wire.GenericCommand
	err     error
	done    chan struct{}
}

// ErrClosed is returned by requests on a closed socket.
var ErrClosed = errors.New("socket closed")

// Dial connects to a websocket URL with the binary subprotocol.
func Dial(ctx context.Context, u string, onPush func(*wire.GenericCommand, time.Time)) (*Conn, error) {
	ws, res, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		Subprotocols:    []string{wire.ProtocolBinary},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if res != nil {
			return nil, fmt.Errorf("dial %s: %s: %w", u, res.Status, err)
		}
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	if ws.Subprotocol() != wire.ProtocolBinary {
		ws.CloseNow()
		return nil, fmt.Errorf("dial %s: server chose subprotocol %q, want %s", u, ws.Subprotocol(), wire.ProtocolBinary)
	}
	ws.SetReadLimit(4 << 20)
	c := &Conn{ws: ws, onPush: onPush, waiting: map[int32]chan *wire.GenericCommand{}, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

func (c *Conn) readLoop() {
	defer close(c.done)
	for {
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.err = err
			for i, ch := range c.waiting {
				close(ch)
				delete(c.waiting, i)
			}
			c.mu.Unlock()
			return
		}
		at := time.Now()
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
		if c.onPush != nil {
			c.onPush(cmd, at)
		}
	}
}

// Done is closed when the socket is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the socket closed (nil while open).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// CloseCode is the close code the peer sent, or -1.
func (c *Conn) CloseCode() int { return int(websocket.CloseStatus(c.Err())) }

// Close drops the socket without a close handshake (no logout: as when a
// phone loses its network).
func (c *Conn) Close() { c.ws.CloseNow() }

// Send writes one command.
func (c *Conn) Send(ctx context.Context, cmd *wire.GenericCommand) error {
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(cmd)
	if err != nil {
		return err
	}
	return c.ws.Write(ctx, websocket.MessageBinary, b)
}

// Request sends cmd with a fresh serial and waits for its reply. An error
// reply is returned as a *realtime.Error (the reply too).
func (c *Conn) Request(ctx context.Context, cmd *wire.GenericCommand) (*wire.GenericCommand, error) {
	ch := make(chan *wire.GenericCommand, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.serial++
	i := c.serial
	c.waiting[i] = ch
	c.mu.Unlock()
	cmd.I = proto.Int32(i)
	if err := c.Send(ctx, cmd); err != nil {
		c.forget(i)
		return nil, err
	}
	select {
	case res, ok := <-ch:
		if !ok {
			return nil, ErrClosed
		}
		if res.GetCmd() == wire.CommandType_error {
			e := res.GetErrorMessage()
			return res, &realtime.Error{Code: int(e.GetCode()), Reason: e.GetReason(), Detail: e.GetDetail(), AppCode: int(e.GetAppCode())}
		}
		return res, nil
	case <-ctx.Done():
		c.forget(i)
		return nil, ctx.Err()
	}
}

func (c *Conn) forget(i int32) {
	c.mu.Lock()
	delete(c.waiting, i)
	c.mu.Unlock()
}

// newUUID returns a random (version 4) UUID, as the SDK's dt and deviceId.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// errorKey is the Errors key of err: a LeanCloud code, "timeout",
// "closed" or "other".
func errorKey(err error) string {
	var re *realtime.Error
	switch {
	case errors.As(err, &re):
		return strconv.Itoa(re.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrClosed), errors.Is(err, context.Canceled):
		return "closed"
	default:
		return "other"
	}
}

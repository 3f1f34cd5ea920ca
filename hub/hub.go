// Package hub is a LeanMessage-compatible realtime server as an http.Handler.
//
// A Hub speaks LeanCloud's realtime wire protocol (protobuf over websocket,
// subprotocols lc.protobuf2.3 and lc.proto2base64.3), so apps written with
// the official LeanCloud IM SDKs keep working when pointed at it. Mount it
// under any prefix of an existing web app:
//
//	st, _ := store.Open(ctx, "chat.db", nil)
//	h, _ := hub.New(st, &hub.Config{AppID: "my-app"})
//	r := chi.NewRouter()
//	r.Mount("/im", h)
//	// JS SDK: new Realtime({appId: 'my-app', appKey: '...', server: 'https://host/im'})
//
// Endpoints under the mount prefix: GET /v1/route (the SDK's router), the
// websocket (any path, on an Upgrade request; the router answers with
// {prefix}/ws), and GET /1.1/rtm/notifications (the SDK's reconnect call).
//
// Concurrency: each socket has one read goroutine (the ServeHTTP call) and
// one writer goroutine draining a bounded queue; a socket whose queue fills
// up is closed as a slow consumer. Commands of one socket are handled in
// order. Shutdown closes every socket (after a goaway) and returns when all
// goroutines the hub started are gone.
package hub

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// Hub is the realtime server. Create it with New; it is an http.Handler.
type Hub struct {
	store   realtime.Store
	devices realtime.DeviceStore
	cfg     Config
	log     *slog.Logger
	hooks   hookSet
	handler http.Handler
	tokens  tokenSigner
	convs   *convCache
	rooms   *rooms
	// noWill remembers clients known to have no will message, so that a
	// dropped socket costs no store write for the (many) clients that never
	// set one. SetWill removes the client; a restart forgets (and checks the
	// store once again).
	noWill clientSet
	nonces *nonceCache

	ctx    context.Context // cancelled by Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the hub starts

	mu      sync.RWMutex
	clients map[string]map[*session]struct{} // live sessions by client id
	conns   map[*conn]struct{}
	closing bool

	pushq pushQueue
}

// New returns a Hub serving st. cfg may be nil.
func New(st realtime.Store, cfg *Config) (*Hub, error) {
	if st == nil {
		return nil, errors.New("hub: nil store")
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &Hub{
		store:   st,
		cfg:     c,
		log:     c.Logger,
		clients: make(map[string]map[*session]struct{}),
		conns:   make(map[*conn]struct{}),
		convs:   newConvCache(),
		rooms:   newRooms(),
		noWill:  clientSet{max: 100_000},
		nonces:  newNonceCache(),
	}
	h.devices = c.DeviceStore
	if h.devices == nil {
		if ds, ok := st.(realtime.DeviceStore); ok {
			h.devices = ds
		}
	}
	secret := c.SessionSecret
	switch {
	case len(secret) > 0:
	case c.MasterKey != "":
		secret = deriveKey(c.MasterKey, "session-token")
	case c.Authenticator == nil && !c.RequireLoginSignature:
		// Anyone may log in as anyone: a token grants nothing a fresh
		// login would not, so a key anyone could derive is harmless and
		// keeps tokens (and tags) valid across restarts.
		secret = deriveKey("leanhub-open-app:"+c.AppID, "session-token")
	default:
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		c.Logger.Warn("hub: SessionSecret is random: session tokens will not survive a restart")
	}
	h.tokens = tokenSigner{key: secret}
	h.hooks = collectHooks(c.Hooks)
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.handler = h.routes()
	h.startPush()
	return h, nil
}

// ServeHTTP serves the router, REST and websocket endpoints.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.handler.ServeHTTP(w, r)
}

// Shutdown sends goaway to every socket, closes them, stops background
// work and waits for every goroutine of the hub to return, or for ctx. It is
// safe to call more than once. Clients' will messages are not sent for a
// shutdown. The Store is not closed.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.sendCmd(&wire.GenericCommand{Cmd: wire.CommandType_goaway.Enum(), Service: proto.Int32(2), ServerTs: proto.Int64(h.nowMs())})
		c.closeWith(1001, "server shutting down", closeShutdown)
	}
	h.cancel()
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hub) now() time.Time { return h.cfg.Clock() }

func (h *Hub) nowMs() int64 { return h.cfg.Clock().UnixMilli() }

// goOwned runs f in a goroutine owned by the hub (waited for by Shutdown).
// Once Shutdown has begun, f is not run.
func (h *Hub) goOwned(f func()) {
	h.mu.RLock()
	if h.closing {
		h.mu.RUnlock()
		return
	}
	h.wg.Add(1)
	h.mu.RUnlock()
	go func() {
		defer h.wg.Done()
		f()
	}()
}

// sessionsOf returns the live sessions of a client.
func (h *Hub) sessionsOf(clientID string) []*session {
	h.mu.RLock()
	defer h.mu.RUnlock()
	set := h.clients[clientID]
	out := make([]*session, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	return out
}

// sessionsOfAll returns the live sessions of several clients.
func (h *Hub) sessionsOfAll(clientIDs []string) []*session {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []*session
	for _, id := range clientIDs {
		for s := range h.clients[id] {
			out = append(out, s)
		}
	}
	return out
}

// online reports whether a client has a live session on this hub.
func (h *Hub) online(clientID string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.clients[clientID]) > 0
}

// Online reports whether clientID has at least one live session.
func (h *Hub) Online(clientID string) bool { return h.online(clientID) }

// isMember reports whether clientID may send to conv: a member, or for a
// chat room, a client that joined it.
func (h *Hub) isMember(conv *realtime.Conversation, clientID string) bool {
	if conv.Transient {
		return h.rooms.has(conv.ID, clientID)
	}
	return conv.HasMember(clientID)
}

// recipients are the members a message from `from` goes to.
func (h *Hub) recipients(conv *realtime.Conversation, from string) []string {
	if conv.Transient {
		return without(h.rooms.list(conv.ID), from)
	}
	return without(conv.Members, from)
}

func deriveKey(secret, purpose string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

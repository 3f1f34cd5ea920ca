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
//	// JS SDK 5.x: new Realtime({appId: 'my-app', appKey: '...', server: 'https://host/im'})
//
// With net/http alone, mux.Handle("/im/", h) works too: the hub finds its
// routes under whatever prefix it is mounted at.
//
// Endpoints under the mount prefix: GET /v1/route (the SDK's router), the
// websocket (any path, on an Upgrade request; the router answers with
// {prefix}/ws), GET /1.1/rtm/notifications (the SDK's reconnect call),
// POST/DELETE /1.1/rtm/devices (push devices), and, with
// Config.MasterKey, LeanCloud's IM REST API v2 for the app's backend under
// /1.2/rtm (conversations, chatrooms, service-conversations, clients,
// messages: see the README's "REST API"), whose calls go through the same
// engine as the SDKs' commands.
//
// # One engine
//
// Every change to a conversation — a message, an edit or recall, a member
// change, an update, a cursor move — goes through one engine operation,
// whether a websocket command, the Go API (Hub.Send, Hub.CreateConversation,
// Hub.AddMembers, ...), the REST API or another node asks for it: the same checks, hooks,
// store writes, cache updates and notifications. The store is the truth and
// the hub caches what it reads, so write through the Hub, never to the Store
// behind it: Hub.Store hands out a read-only view for that reason.
//
// # Concurrency
//
// Each socket has one read goroutine and, while it has frames to send, one
// writer; a socket whose outbound queue fills up is closed as a slow
// consumer. Operations on one conversation run in order in its lane
// (hooks, store writes, deliveries); different conversations run
// concurrently, so a slow hook delays only its conversation. Messages are
// group-committed: many in one store transaction, each acknowledged only
// after it is durable. Client acks and reads are coalesced in memory and
// written in batches. Shutdown closes every socket (after a goaway), lets
// queued work finish and returns when every goroutine the hub started is
// gone. Behind a load balancer, call Drain first: Ready turns false, new
// sockets are refused, and the sockets are told to go and closed spread
// over its deadline. Config.Metrics receives counters and latencies
// (package metrics/prom exports them to Prometheus).
//
// # Several nodes
//
// One hub is one node. To run several hub processes behind a load
// balancer on one PostgreSQL database, give each a Broker (Config.Broker:
// broker/nats, or broker/pgnotify on the database itself). A hub without
// a broker does not know about other processes on its database: their
// clients would not hear its clients live. With one, every change above
// reaches the other nodes' sessions and caches, presence (online status,
// <clientId, tag> conflicts, will messages) spans the nodes, and a node
// that dies is reaped by the others within Config.NodeLease. See Broker.
package hub

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"
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
	mux     *chi.Mux
	tokens  tokenSigner
	nonces  *nonceCache
	revoked revocations

	eng   *engine
	cl    *clusterNode // nil for a single node
	reg   *registry
	rooms *rooms
	tasks *taskPool
	push  pushPipeline
	// syncs admits login syncs (Limits.MaxConcurrentSyncs at once).
	syncs  chan struct{}
	limits *limiters
	// restQuota is the app's bucket of REST message calls.
	restQuota restBucket
	// noWill remembers clients known to have no will message, so that a
	// dropped socket costs no store write for the (many) clients that never
	// set one. SetWill removes the client; a restart forgets (and checks the
	// store once again).
	noWill clientSet

	ctx    context.Context // cancelled by Shutdown, last
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the hub starts

	mu           sync.RWMutex
	conns        map[*conn]struct{}
	draining     atomic.Bool // Drain began: not Ready, new sockets refused
	closing      bool
	shutdownOnce sync.Once
	shutdownDone chan struct{}
	shutdownErr  error
}

// taskPoolSize bounds the store-reading requests served at once.
const taskPoolSize = 256

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
		store:        st,
		cfg:          c,
		log:          c.Logger,
		conns:        make(map[*conn]struct{}),
		reg:          newRegistry(),
		rooms:        newRooms(),
		noWill:       clientSet{max: 100_000},
		nonces:       newNonceCache(),
		shutdownDone: make(chan struct{}),
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
		if c.Broker != nil {
			return nil, errors.New("hub: several nodes need a shared session token key: set SessionSecret or MasterKey")
		}
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		c.Logger.Warn("hub: SessionSecret is random: session tokens will not survive a restart")
	}
	h.tokens = tokenSigner{key: secret}
	lctx, lcancel := context.WithTimeout(context.Background(), storeTimeout)
	revs, err := st.Revocations(lctx, c.Clock().Add(-c.SessionTokenTTL))
	lcancel()
	if err != nil {
		return nil, fmt.Errorf("hub: load session revocations: %w", err)
	}
	for _, r := range revs {
		h.revoked.add(r.ClientID, r.Device, r.At.UnixMicro())
	}
	h.hooks = collectHooks(c.Hooks)
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.tasks = newTaskPool(h, taskPoolSize)
	h.syncs = make(chan struct{}, c.Limits.MaxConcurrentSyncs)
	h.limits = newLimiters(&c.Limits, c.Clock)
	h.eng = newEngine(h)
	if c.Broker != nil {
		ps, ok := st.(realtime.PresenceStore)
		if !ok {
			return nil, errors.New("hub: a Broker needs a store that is a realtime.PresenceStore")
		}
		cl, err := newCluster(h, c.Broker, ps)
		if err != nil {
			return nil, fmt.Errorf("hub: join the cluster: %w", err)
		}
		h.cl = cl
		cl.start()
	}
	h.eng.start()
	h.mux = h.routes()
	h.startPush()
	h.wg.Add(1)
	go h.keeper()
	return h, nil
}

// ServeHTTP serves the router, REST and websocket endpoints.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if chi.RouteContext(r.Context()) == nil {
		h.serveUnmounted(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// Shutdown sends goaway to every socket and closes them, lets the work
// already queued finish (messages being stored are acknowledged, cursor
// moves written, pushes enqueued), stops background work and waits for
// every goroutine of the hub to return, or for ctx. It is safe to call more
// than once. Clients' will messages are not sent for a shutdown. The Store
// is not closed.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.shutdownOnce.Do(func() {
		go func() {
			h.shutdownErr = h.shutdown(ctx)
			close(h.shutdownDone)
		}()
	})
	select {
	case <-h.shutdownDone:
		return h.shutdownErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Drain takes the hub out of service gently, before Shutdown: Ready turns
// false at once (a load balancer polling it stops sending new clients),
// new websockets are refused with 503, and every socket gets a goaway (the
// SDKs then reconnect, through the load balancer, to another node). The
// sockets are then closed (with 1001, like Shutdown's) spread over the time
// ctx leaves, so that the other nodes see a stream of reconnects rather
// than one storm; Drain returns when every socket is gone, or when ctx is
// done with the error ctx.Err(). Work already queued is not cut: call
// Shutdown after Drain to finish it and stop. Calling Drain again only
// waits again.
func (h *Hub) Drain(ctx context.Context) error {
	first := !h.draining.Swap(true)
	if first {
		h.mu.RLock()
		conns := make([]*conn, 0, len(h.conns))
		for c := range h.conns {
			conns = append(conns, c)
		}
		h.mu.RUnlock()
		goaway := &wire.GenericCommand{Cmd: wire.CommandType_goaway.Enum(), Service: proto.Int32(2), ServerTs: proto.Int64(h.nowMs())}
		for _, c := range conns {
			c.sendCmd(goaway)
		}
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.closeSpread(ctx, conns)
		}()
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if h.SocketCount() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// closeSpread closes conns over 80% of the time ctx leaves (at once
// without a deadline), in steps of drainStep.
func (h *Hub) closeSpread(ctx context.Context, conns []*conn) {
	const drainStep = 50 * time.Millisecond
	var window time.Duration
	if d, ok := ctx.Deadline(); ok {
		window = time.Until(d) * 8 / 10
	}
	steps := max(1, int(window/drainStep))
	per := (len(conns) + steps - 1) / steps
	for i := 0; i < len(conns); i += per {
		for _, c := range conns[i:min(i+per, len(conns))] {
			c.closeWith(websocket.StatusGoingAway, "server shutting down", closeShutdown)
		}
		if i+per >= len(conns) {
			return
		}
		select {
		case <-time.After(drainStep):
		case <-ctx.Done():
			for _, c := range conns[i+per:] {
				c.closeWith(websocket.StatusGoingAway, "server shutting down", closeShutdown)
			}
			return
		case <-h.ctx.Done():
			return
		}
	}
}

// SocketCount is the number of websockets open.
func (h *Hub) SocketCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.conns)
}

func (h *Hub) shutdown(ctx context.Context) error {
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
	err := h.eng.drain(ctx)
	err = errors.Join(err, h.eng.stop(ctx))
	if h.cl != nil {
		err = errors.Join(err, h.cl.stop(ctx))
	}
	h.stopPush(ctx)
	h.cancel()
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	return err
}

func (h *Hub) isClosing() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.closing
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

// Online reports whether clientID has at least one live session.
func (h *Hub) Online(clientID string) bool { return h.online(clientID) }

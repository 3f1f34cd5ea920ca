package hub_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	natsbroker "github.com/leanhub/realtime/broker/nats"
	"github.com/leanhub/realtime/broker/pgnotify"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/pgtest"
	"github.com/leanhub/realtime/internal/wire"
	"github.com/leanhub/realtime/store"
)

// natsEnv names the NATS server the cluster tests use (default
// nats://127.0.0.1:4222); they skip, saying so, when it is not reachable.
const natsEnv = "REALTIME_TEST_NATS_URL"

// clusterNode is one hub of a test deployment, on its own store (as a
// process of its own would be), on a real socket.
type clusterNode struct {
	h    *hub.Hub
	st   *store.SQL
	srv  *httptest.Server
	gate *gate // holds back what the node receives, while closed
}

// gate holds back the events a node receives while closed and hands them
// over, in order, when opened: a node that hears of things late.
type gate struct {
	mu   sync.Mutex
	shut bool
	held [][]byte
	r    hub.BrokerReceiver
}

func (g *gate) close() { g.mu.Lock(); g.shut = true; g.mu.Unlock() }

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shut = false
	for _, d := range g.held {
		g.r.Receive(d)
	}
	g.held = nil
}

func (g *gate) Subscribed()        { g.r.Subscribed() }
func (g *gate) Lost(reason string) { g.r.Lost(reason) }
func (g *gate) Receive(data []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut {
		g.held = append(g.held, data)
		return
	}
	g.r.Receive(data)
}

// gatedBroker passes what its broker receives through a gate.
type gatedBroker struct {
	hub.Broker
	g *gate
}

func (b *gatedBroker) Run(ctx context.Context, r hub.BrokerReceiver) error {
	b.g.mu.Lock()
	b.g.r = r
	b.g.mu.Unlock()
	return b.Broker.Run(ctx, b.g)
}

func (b *gatedBroker) FedByStore() bool {
	f, ok := b.Broker.(interface{ FedByStore() bool })
	return ok && f.FedByStore()
}

func (n *clusterNode) wsURL() string { return "ws" + n.srv.URL[len("http"):] + "/im/ws" }

func (n *clusterNode) login(t *testing.T, clientID string, o lcclient.OpenOptions) *lcclient.Client {
	t.Helper()
	c, err := n.dial(t, clientID, o)
	if err != nil {
		t.Fatalf("open %s: %v", clientID, err)
	}
	return c
}

func (n *clusterNode) dial(t *testing.T, clientID string, o lcclient.OpenOptions) (*lcclient.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := lcclient.Dial(ctx, n.wsURL())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(c.Close)
	c.AppID = "cluster"
	_, err = c.Open(ctx, clientID, o)
	return c, err
}

// clusterSchema returns a DSN for a fresh PostgreSQL schema (dropped when
// t ends), or skips t without PostgreSQL.
func clusterSchema(t *testing.T) string {
	t.Helper()
	base := os.Getenv(pgtest.Env)
	if base == "" {
		t.Skip("several-node tests skipped: they need PostgreSQL; set " + pgtest.Env)
	}
	dsn, drop, err := pgtest.NewSchema(base, "cluster")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	return dsn
}

func natsURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv(natsEnv)
	if u == "" {
		u = "nats://127.0.0.1:4222"
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", pu.Host, time.Second)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("NATS is not reachable at %s: %v", u, err)
		}
		t.Skipf("NATS tests skipped: no NATS server at %s (set %s)", u, natsEnv)
	}
	c.Close()
	return u
}

// brokers are the engines the cluster tests run on: each returns a new
// broker for one node's store, all of one deployment when given the same
// deployment name.
func brokers(t *testing.T) map[string]func(t *testing.T, st *store.SQL, deployment string) hub.Broker {
	return map[string]func(t *testing.T, st *store.SQL, deployment string) hub.Broker{
		"nats": func(t *testing.T, st *store.SQL, deployment string) hub.Broker {
			b, err := natsbroker.Connect(natsURL(t), &natsbroker.Options{Subject: "leanhub.test." + deployment})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			return b
		},
		"pgnotify": func(t *testing.T, st *store.SQL, _ string) hub.Broker {
			b, err := pgnotify.New(context.Background(), st, nil)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	}
}

// startCluster starts n hubs on one fresh PostgreSQL schema joined by a
// broker, and runs f on them for each broker.
func eachCluster(t *testing.T, n int, cfg *hub.Config, f func(t *testing.T, nodes []*clusterNode)) {
	for name, mk := range brokers(t) {
		t.Run(name, func(t *testing.T) {
			dsn := clusterSchema(t)
			var b [4]byte
			_, _ = rand.Read(b[:])
			deployment := hex.EncodeToString(b[:])
			var nodes []*clusterNode
			for range n {
				st, err := store.Open(context.Background(), dsn, &store.Options{MaxConns: 4})
				if err != nil {
					t.Fatal(err)
				}
				c := hub.Config{}
				if cfg != nil {
					c = *cfg
				}
				c.AppID = "cluster"
				c.SessionSecret = []byte("one key for every node of the test")
				c.NodeLease = 1500 * time.Millisecond
				g := &gate{}
				c.Broker = &gatedBroker{Broker: mk(t, st, deployment), g: g}
				h, err := hub.New(st, &c)
				if err != nil {
					t.Fatal(err)
				}
				r := chi.NewRouter()
				r.Mount("/im", h)
				srv := httptest.NewServer(r)
				node := &clusterNode{h: h, st: st, srv: srv, gate: g}
				t.Cleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if err := h.Shutdown(ctx); err != nil {
						t.Errorf("shutdown: %v", err)
					}
					srv.Close()
					st.Close()
				})
				nodes = append(nodes, node)
			}
			f(t, nodes)
		})
	}
}

// eventually retries check until it returns nil or 10 seconds passed.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// online waits until node sees clientIDs online (presence travels
// asynchronously).
func waitOnline(t *testing.T, n *clusterNode, clientIDs ...string) {
	t.Helper()
	eventually(t, "presence", func() error {
		for _, id := range clientIDs {
			if !n.h.Online(id) {
				return errors.New(id + " is not online yet")
			}
		}
		return nil
	})
}

func nextMessage(t *testing.T, c *lcclient.Client, what string) *lcclient.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := c.NextMessage(ctx)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return m
}

func nextOf(t *testing.T, c *lcclient.Client, typ wire.CommandType, what string) *wire.GenericCommand {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := c.NextOf(ctx, typ)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return p
}

func TestClusterMessagesAcrossNodes(t *testing.T) {
	eachCluster(t, 3, nil, func(t *testing.T, nodes []*clusterNode) {
		ctx := ctxT(t)
		a, b, c := nodes[0], nodes[1], nodes[2]
		tom := a.login(t, "Tom", lcclient.OpenOptions{})
		jerry := b.login(t, "Jerry", lcclient.OpenOptions{})
		spike := c.login(t, "Spike", lcclient.OpenOptions{})
		tomWeb := c.login(t, "Tom", lcclient.OpenOptions{}) // Tom's second device, on another node

		// 1:1
		direct, err := tom.StartConversation(ctx, "Jerry")
		if err != nil {
			t.Fatal(err)
		}
		sent, err := tom.SendText(ctx, direct, "hi Jerry")
		if err != nil {
			t.Fatal(err)
		}
		if m := nextMessage(t, jerry, "Jerry on another node"); m.ID != sent.ID || m.Data != text("hi Jerry") {
			t.Fatalf("Jerry got %+v, want %s", m, sent.ID)
		}
		if m := nextMessage(t, tomWeb, "Tom's other device"); m.ID != sent.ID {
			t.Fatalf("Tom's other device got %+v", m)
		}

		// A group across the three nodes.
		group, err := tom.StartConversationWith(ctx, &wire.ConvCommand{M: []string{"Tom", "Jerry", "Spike"}})
		if err != nil {
			t.Fatal(err)
		}
		nextOf(t, jerry, wire.CommandType_conv, "Jerry invited")
		nextOf(t, spike, wire.CommandType_conv, "Spike invited")
		for i := range 20 {
			if _, err := tom.SendText(ctx, group, "m"+string(rune('a'+i))); err != nil {
				t.Fatal(err)
			}
		}
		for _, rc := range []*lcclient.Client{jerry, spike} {
			for i := range 20 {
				if m := nextMessage(t, rc, "group message"); m.Data != text("m"+string(rune('a'+i))) {
					t.Fatalf("%s got %q as message %d: out of order or lost", rc.ClientID, m.Data, i)
				}
			}
		}
		spikeSent, err := spike.SendText(ctx, group, "from C")
		if err != nil {
			t.Fatal(err)
		}
		if m := nextMessage(t, jerry, "Spike's message at Jerry"); m.ID != spikeSent.ID || m.From != "Spike" {
			t.Fatalf("Jerry got %+v", m)
		}

		// Edit and recall reach the other nodes.
		patch := func(item *wire.PatchItem) {
			t.Helper()
			if _, err := tom.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_patch.Enum(), Op: wire.OpType_modify.Enum(),
				PeerId: proto.String("Tom"), PatchMessage: &wire.PatchCommand{Patches: []*wire.PatchItem{item}}}); err != nil {
				t.Fatal(err)
			}
		}
		patch(&wire.PatchItem{Cid: proto.String(direct), Mid: proto.String(sent.ID), Data: proto.String(text("hi, Jerry"))})
		p := nextOf(t, jerry, wire.CommandType_patch, "edit at Jerry").GetPatchMessage().GetPatches()[0]
		if p.GetMid() != sent.ID || p.GetData() != text("hi, Jerry") {
			t.Fatalf("edit push %v", p)
		}
		patch(&wire.PatchItem{Cid: proto.String(direct), Mid: proto.String(sent.ID), Recall: proto.Bool(true)})
		if p := nextOf(t, jerry, wire.CommandType_patch, "recall at Jerry").GetPatchMessage().GetPatches()[0]; !p.GetRecall() {
			t.Fatalf("recall push %v", p)
		}

		// Receipts: Jerry's ack and read on B reach Tom on A.
		rcpd, err := tom.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(direct), Msg: proto.String(text("receipt please")),
			R: proto.Bool(true), Dt: proto.String("dt-rcp")})
		if err != nil {
			t.Fatal(err)
		}
		got := nextMessage(t, jerry, "receipt message")
		if err := jerry.Ack(ctx, direct, got.Timestamp, got.Timestamp); err != nil {
			t.Fatal(err)
		}
		r := nextOf(t, tom, wire.CommandType_rcp, "delivery receipt at Tom").GetRcpMessage()
		if r.GetId() != rcpd.ID || r.GetRead() || r.GetFrom() != "Jerry" {
			t.Fatalf("delivery receipt %v", r)
		}
		if err := jerry.Read(ctx, direct, 0); err != nil {
			t.Fatal(err)
		}
		waitReadReceipt(t, tom, "read receipt at Tom")

		// Online status across nodes.
		waitOnline(t, b, "Tom", "Spike")
		res, err := jerry.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_session.Enum(), Op: wire.OpType_query.Enum(),
			PeerId: proto.String("Jerry"), SessionMessage: &wire.SessionCommand{SessionPeerIds: []string{"Tom", "Spike", "Nobody"}}})
		if err != nil {
			t.Fatal(err)
		}
		if on := res.GetSessionMessage().GetOnlineSessionPeerIds(); !slices.Equal(slices.Sorted(slices.Values(on)), []string{"Spike", "Tom"}) {
			t.Fatalf("online = %v, want Spike and Tom", on)
		}
	})
}

func TestClusterMembershipAndRooms(t *testing.T) {
	eachCluster(t, 3, nil, func(t *testing.T, nodes []*clusterNode) {
		ctx := ctxT(t)
		a, b, c := nodes[0], nodes[1], nodes[2]
		tom := a.login(t, "Tom", lcclient.OpenOptions{})
		jerry := b.login(t, "Jerry", lcclient.OpenOptions{})
		spike := c.login(t, "Spike", lcclient.OpenOptions{})
		group, err := tom.StartConversationWith(ctx, &wire.ConvCommand{M: []string{"Tom", "Jerry"}})
		if err != nil {
			t.Fatal(err)
		}
		nextOf(t, jerry, wire.CommandType_conv, "Jerry invited")
		// B caches the conversation.
		if _, err := jerry.SendText(ctx, group, "hello"); err != nil {
			t.Fatal(err)
		}
		nextMessage(t, tom, "Jerry's hello")
		// Spike (on C) is added by Tom (on A): C and B see it.
		if _, err := tom.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_add.Enum(),
			PeerId: proto.String("Tom"), ConvMessage: &wire.ConvCommand{Cid: proto.String(group), M: []string{"Spike"}}}); err != nil {
			t.Fatal(err)
		}
		if p := nextOf(t, spike, wire.CommandType_conv, "Spike invited"); p.GetOp() != wire.OpType_joined {
			t.Fatalf("Spike got %v", p)
		}
		if p := nextOf(t, jerry, wire.CommandType_conv, "Jerry told"); p.GetOp() != wire.OpType_members_joined {
			t.Fatalf("Jerry got %v", p)
		}
		// Spike may send at once from C; Jerry's node B knows he is a
		// member and delivers to Jerry.
		if _, err := spike.SendText(ctx, group, "joined"); err != nil {
			t.Fatalf("the new member sends from another node: %v", err)
		}
		if m := nextMessage(t, jerry, "the new member's message"); m.From != "Spike" {
			t.Fatalf("Jerry got %+v", m)
		}
		nextMessage(t, tom, "the new member's message at Tom")
		// Jerry is removed by Tom: B no longer delivers to him.
		if _, err := tom.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_remove.Enum(),
			PeerId: proto.String("Tom"), ConvMessage: &wire.ConvCommand{Cid: proto.String(group), M: []string{"Jerry"}}}); err != nil {
			t.Fatal(err)
		}
		if p := nextOf(t, jerry, wire.CommandType_conv, "Jerry removed"); p.GetOp() != wire.OpType_left {
			t.Fatalf("Jerry got %v", p)
		}
		if _, err := tom.SendText(ctx, group, "without Jerry"); err != nil {
			t.Fatal(err)
		}
		// Spike joined after Jerry's hello: the next message he gets is
		// this one, even when his node heard of the hello late.
		if m := nextMessage(t, spike, "message after the removal"); m.Data != text("without Jerry") {
			t.Fatalf("Spike got %q", m.Data)
		}
		noMore(t, jerry, wire.CommandType_direct, "a removed member")
		if _, err := jerry.SendText(ctx, group, "still here?"); !errors.Is(err, realtime.ErrInvalidTarget) {
			t.Fatalf("a removed member sent from his node: %v", err)
		}

		// A chat room whose joiners are on three nodes.
		room, err := tom.StartConversationWith(ctx, &wire.ConvCommand{Transient: proto.Bool(true), N: proto.String("lobby")})
		if err != nil {
			t.Fatal(err)
		}
		for _, cl := range []*lcclient.Client{jerry, spike} {
			if _, err := cl.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_add.Enum(),
				PeerId: proto.String(cl.ClientID), ConvMessage: &wire.ConvCommand{Cid: proto.String(room), M: []string{cl.ClientID}}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tom.SendText(ctx, room, "welcome"); err != nil {
			t.Fatal(err)
		}
		for _, cl := range []*lcclient.Client{jerry, spike} {
			m := nextMessage(t, cl, "chat room message on another node")
			if m.ConvID != room || m.Data != text("welcome") {
				t.Fatalf("%s got %+v", cl.ClientID, m)
			}
		}
	})
}

func TestClusterConflictsLogoutAndUnread(t *testing.T) {
	eachCluster(t, 3, nil, func(t *testing.T, nodes []*clusterNode) {
		ctx := ctxT(t)
		a, b, c := nodes[0], nodes[1], nodes[2]
		phone := a.login(t, "Tom", lcclient.OpenOptions{Tag: "mobile", DeviceID: "phone"})
		waitOnline(t, b, "Tom")
		// A second explicit login with the same tag on another node kicks
		// the first with 4111, as on one node.
		tablet := b.login(t, "Tom", lcclient.OpenOptions{Tag: "mobile", DeviceID: "tablet"})
		p := nextOf(t, phone, wire.CommandType_session, "the older session kicked")
		if p.GetOp() != wire.OpType_closed || p.GetSessionMessage().GetCode() != realtime.CodeSessionConflict {
			t.Fatalf("the older session got %v", p)
		}
		// A reconnect of another device with that tag is refused on a
		// third node.
		waitOnline(t, c, "Tom")
		if _, err := c.dial(t, "Tom", lcclient.OpenOptions{Tag: "mobile", DeviceID: "laptop", Reconnect: true}); !errors.Is(err, realtime.ErrSessionConflict) {
			t.Fatalf("a conflicting reconnect on a third node: %v", err)
		}

		// Hub.Logout on one node ends the client's sessions on the others.
		if err := a.h.Logout(ctx, "Tom"); err != nil {
			t.Fatal(err)
		}
		p = nextOf(t, tablet, wire.CommandType_session, "logged out by the app")
		if p.GetSessionMessage().GetCode() != realtime.CodeKickedByApp {
			t.Fatalf("logout push %v", p)
		}

		// Unread after login on another node.
		jerry := a.login(t, "Jerry", lcclient.OpenOptions{})
		conv, err := jerry.StartConversation(ctx, "Kate")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jerry.SendText(ctx, conv, "while you were out"); err != nil {
			t.Fatal(err)
		}
		kate := c.login(t, "Kate", lcclient.OpenOptions{})
		// Counted once: in the login sync, or (when the message reached
		// Kate's node while she was logging in) pushed live instead.
		wantCountedOnce(t, kate, conv)
	})
}

// A read on one node counts on another: the cursor is the store's.
func TestClusterReadOnOneNodeUnreadOnAnother(t *testing.T) {
	eachCluster(t, 3, nil, func(t *testing.T, nodes []*clusterNode) {
		ctx := ctxT(t)
		a, b, c := nodes[0], nodes[1], nodes[2]
		tom := a.login(t, "Tom", lcclient.OpenOptions{})
		conv, err := tom.StartConversation(ctx, "Jerry")
		if err != nil {
			t.Fatal(err)
		}
		tom.SendText(ctx, conv, "offline 1")
		tom.SendText(ctx, conv, "offline 2")
		jerry := b.login(t, "Jerry", lcclient.OpenOptions{})
		nextOf(t, jerry, wire.CommandType_unread, "unread on login")
		tom.SendText(ctx, conv, "online 3")
		nextMessage(t, jerry, "online 3")
		if err := jerry.Read(ctx, conv, 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		jerry.Close()
		tom.SendText(ctx, conv, "after read")
		again := c.login(t, "Jerry", lcclient.OpenOptions{})
		un := nextOf(t, again, wire.CommandType_unread, "unread on the second login").GetUnreadMessage()
		if len(un.GetConvs()) != 1 || un.GetConvs()[0].GetUnread() != 1 {
			t.Fatalf("unread after a read on another node: %v", un)
		}
	})
}

// The SDK's paused connection: a read, a drop, messages from another
// node meanwhile, a reconnect to the same node.
func TestClusterReconnectAfterReadCountsOnlyNewMessages(t *testing.T) {
	eachCluster(t, 2, nil, func(t *testing.T, nodes []*clusterNode) {
		ctx := ctxT(t)
		a, b := nodes[0], nodes[1]
		tom := a.login(t, "Tom", lcclient.OpenOptions{})
		jerry := b.login(t, "Jerry", lcclient.OpenOptions{})
		conv, err := jerry.StartConversation(ctx, "Tom")
		if err != nil {
			t.Fatal(err)
		}
		jerry.SendText(ctx, conv, "before")
		m := nextMessage(t, tom, "before")
		if err := tom.Read(ctx, conv, m.Timestamp); err != nil {
			t.Fatal(err)
		}
		waitReadReceipt(t, jerry, "Jerry's read receipt")
		tom.Close()
		for _, s := range []string{"1", "2", "3"} {
			jerry.SendText(ctx, conv, "while away "+s)
		}
		again := a.login(t, "Tom", lcclient.OpenOptions{Reconnect: true})
		wantCounted(t, again, conv, 3)
	})
}

// Who read a message is known on every node as soon as it is read on
// one, before the reader's node wrote the cursor.
func TestClusterReceiptsQueryOnAnotherNode(t *testing.T) {
	eachCluster(t, 2, nil, func(t *testing.T, nodes []*clusterNode) {
		ctx := ctxT(t)
		a, b := nodes[0], nodes[1]
		tom := a.login(t, "Tom", lcclient.OpenOptions{})
		jerry := b.login(t, "Jerry", lcclient.OpenOptions{})
		conv, _ := tom.StartConversation(ctx, "Jerry")
		sent, err := tom.SendText(ctx, conv, "read me")
		if err != nil {
			t.Fatal(err)
		}
		nextMessage(t, jerry, "read me")
		if err := jerry.Read(ctx, conv, 0); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Jerry's read seen on Tom's node", func() error {
			_, read, err := a.h.Receipts(ctx, conv, sent.ID)
			if err != nil {
				return err
			}
			if !slices.Contains(read, "Jerry") {
				return errors.New("not yet")
			}
			return nil
		})
	})
}

func TestClusterWillOfADeadNode(t *testing.T) {
	eachCluster(t, 3, nil, func(t *testing.T, nodes []*clusterNode) {
		ctx := ctxT(t)
		a, c := nodes[0], nodes[2]
		tom := a.login(t, "Tom", lcclient.OpenOptions{})
		spike := c.login(t, "Spike", lcclient.OpenOptions{})
		group, err := tom.StartConversationWith(ctx, &wire.ConvCommand{M: []string{"Tom", "Spike"}})
		if err != nil {
			t.Fatal(err)
		}
		nextOf(t, spike, wire.CommandType_conv, "Spike invited")
		if _, err := spike.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(group), Msg: proto.String(text("Spike left us")),
			Will: proto.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		waitOnline(t, a, "Spike")
		start := time.Now()
		hub.Crash(c.h)
		m := nextMessage(t, tom, "the dead node's client's will")
		if m.From != "Spike" || m.Data != text("Spike left us") {
			t.Fatalf("Tom got %+v", m)
		}
		t.Logf("will delivered %v after the node died (lease 1.5s)", time.Since(start).Round(10*time.Millisecond))
		if a.h.Online("Spike") {
			t.Fatal("a dead node's client is still online")
		}
		noMore(t, tom, wire.CommandType_direct, "a second will")
	})
}

// A node whose broker connection drops may have missed events: it has its
// sockets reconnect (and the SDKs fetch what they missed). Here the
// PostgreSQL backend of one node's LISTEN connection is terminated.
func TestClusterNodeResynchronizesAfterLosingItsBroker(t *testing.T) {
	dsn := clusterSchema(t)
	var nodes []*clusterNode
	var brokers []*pgnotify.Broker
	for range 2 {
		st, err := store.Open(context.Background(), dsn, &store.Options{MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		b, err := pgnotify.New(context.Background(), st, &pgnotify.Options{PingInterval: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		brokers = append(brokers, b)
		h, err := hub.New(st, &hub.Config{AppID: "cluster", SessionSecret: []byte("k"), Broker: b, NodeLease: 1500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		r := chi.NewRouter()
		r.Mount("/im", h)
		srv := httptest.NewServer(r)
		n := &clusterNode{h: h, st: st, srv: srv}
		nodes = append(nodes, n)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			h.Shutdown(ctx)
			srv.Close()
			st.Close()
		})
	}
	ctx := ctxT(t)
	a, b := nodes[0], nodes[1]
	tom := a.login(t, "Tom", lcclient.OpenOptions{})
	jerry := b.login(t, "Jerry", lcclient.OpenOptions{})
	conv, err := tom.StartConversation(ctx, "Jerry")
	if err != nil {
		t.Fatal(err)
	}
	tom.SendText(ctx, conv, "hello")
	nextMessage(t, jerry, "before the cut")

	// Cut node b's listener: its backend is the one LISTENing on b's
	// channel whose pid is not ours.
	var pids []int
	if err := b.st.DB().NewRaw("SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND query LIKE ?",
		"%"+brokers[1].Channel()+"%").Scan(ctx, &pids); err != nil {
		t.Fatal(err)
	}
	if len(pids) != 2 {
		t.Fatalf("found %d listeners on the channel, want 2 (one per node)", len(pids))
	}
	// Which one is b's: terminate each in turn would cut both; instead
	// terminate both and expect both nodes to resynchronize.
	for _, pid := range pids {
		if _, err := b.st.DB().ExecContext(ctx, "SELECT pg_terminate_backend(?)", pid); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-jerry.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Jerry's socket stayed open on a node that lost its broker connection")
	}
	if code := jerry.CloseStatus(); code != 1012 {
		t.Fatalf("close code %d, want 1012 (service restart: reconnect)", code)
	}
	// Node a lost its listener too: it resynchronizes as well (maybe
	// later than b), closing Tom's socket. Logging in again before that
	// would be cut by it.
	select {
	case <-tom.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Tom's socket stayed open on a node that lost its broker connection")
	}
	// The SDKs reconnect; the nodes deliver across again.
	waitReady(t, a)
	waitReady(t, b)
	again := b.login(t, "Jerry", lcclient.OpenOptions{Reconnect: true})
	tom2 := a.login(t, "Tom", lcclient.OpenOptions{Reconnect: true})
	waitOnline(t, a, "Jerry")
	if _, err := tom2.SendText(ctx, conv, "after the cut"); err != nil {
		t.Fatal(err)
	}
	m := nextMessage(t, again, "after the cut")
	if m.Data != text("after the cut") {
		t.Fatalf("Jerry got %+v", m)
	}
}

// waitReadReceipt waits for a read receipt at c, skipping delivery ones.
func waitReadReceipt(t *testing.T, c *lcclient.Client, what string) {
	t.Helper()
	eventually(t, what, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p, err := c.NextOf(ctx, wire.CommandType_rcp)
		if err != nil {
			return err
		}
		if !p.GetRcpMessage().GetRead() {
			return errors.New("not a read receipt")
		}
		return nil
	})
}

func waitReady(t *testing.T, n *clusterNode) {
	t.Helper()
	eventually(t, "node ready", func() error {
		if !n.h.Ready() {
			return errors.New("not ready")
		}
		return nil
	})
}

// wantCountedOnce waits for a conversation's one new message to reach c
// exactly once: as a count of 1 in the login sync, or as a live push.
func wantCountedOnce(t *testing.T, c *lcclient.Client, conv string) {
	t.Helper()
	wantCounted(t, c, conv, 1)
}

// wantCounted checks what the SDK would count for conv after a login: the
// login sync's unread count plus the messages pushed live must be n (a
// message that reached the node while the client logged in is pushed live
// and left out of the count).
func wantCounted(t *testing.T, c *lcclient.Client, conv string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	counted, live := 0, 0
	for {
		p, err := c.Next(ctx)
		if err != nil {
			break // quiet for the rest of the window
		}
		switch p.GetCmd() {
		case wire.CommandType_unread:
			for _, u := range p.GetUnreadMessage().GetConvs() {
				if u.GetCid() == conv {
					if counted > 0 || live > 0 {
						t.Fatalf("a second count (%d) after %d counted and %d live", u.GetUnread(), counted, live)
					}
					counted = int(u.GetUnread())
				}
			}
		case wire.CommandType_direct:
			if p.GetDirectMessage().GetCid() == conv {
				live++
			}
		}
	}
	if counted+live != n {
		t.Fatalf("the SDK would count %d (%d in the sync, %d live), want %d", counted+live, counted, live, n)
	}
}

// A message that reaches a node after a member it did not go to joined
// (the node heard of both late, the join first in the store) is not
// delivered to that member there.
func TestClusterLateMessageIsNotForMembersWhoJoinedAfterIt(t *testing.T) {
	eachCluster(t, 2, nil, func(t *testing.T, nodes []*clusterNode) {
		ctx := ctxT(t)
		a, b := nodes[0], nodes[1]
		tom := a.login(t, "Tom", lcclient.OpenOptions{})
		a.login(t, "Jerry", lcclient.OpenOptions{})
		spike := b.login(t, "Spike", lcclient.OpenOptions{})
		waitOnline(t, a, "Spike")
		group, err := tom.StartConversationWith(ctx, &wire.ConvCommand{M: []string{"Tom", "Jerry"}, Unique: proto.Bool(false)})
		if err != nil {
			t.Fatal(err)
		}
		b.gate.close()
		if _, err := tom.SendText(ctx, group, "before Spike"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // later timestamps for the join
		if _, err := tom.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_add.Enum(),
			PeerId: proto.String("Tom"), ConvMessage: &wire.ConvCommand{Cid: proto.String(group), M: []string{"Spike"}}}); err != nil {
			t.Fatal(err)
		}
		b.gate.open()
		nextOf(t, spike, wire.CommandType_conv, "Spike invited")
		if _, err := tom.SendText(ctx, group, "after Spike"); err != nil {
			t.Fatal(err)
		}
		if m := nextMessage(t, spike, "the message after the join"); m.Data != text("after Spike") {
			t.Fatalf("Spike got %q first: a message sent before he joined", m.Data)
		}
	})
}

// Package killtest runs three examples/chat processes on one PostgreSQL
// database, joined by each broker, puts SDK-like load on them (clients
// send, ack what they receive, reconnect when their socket drops), kills
// one node with SIGKILL in the middle and checks what users would: every
// acknowledged message is in history exactly once, the clients of the
// surviving nodes keep receiving, and the clients of the dead node
// reconnect to another node and catch up.
package killtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
	"github.com/leanhub/realtime/store"
)

const (
	nodes          = 3
	clientsPerNode = 8
	messagesEach   = 40
	sendEvery      = 25 * time.Millisecond
)

func TestKillOneNodeOfThreeUnderLoad(t *testing.T) {
	base := os.Getenv("REALTIME_TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("the kill -9 test needs PostgreSQL: set REALTIME_TEST_POSTGRES_DSN")
	}
	bin := buildChat(t)
	for _, broker := range []string{"nats", "postgres"} {
		t.Run(broker, func(t *testing.T) {
			arg := broker
			if broker == "nats" {
				arg = natsURL(t)
			}
			dsn := freshSchema(t, base)
			run(t, bin, dsn, arg)
		})
	}
}

// app is one examples/chat process.
type app struct {
	cmd  *exec.Cmd
	ws   string
	out  *lockedBuffer
	done chan struct{}
}

func run(t *testing.T, bin, dsn, broker string) {
	var apps []*app
	for i := range nodes {
		apps = append(apps, start(t, bin, "-addr", "127.0.0.1:0", "-db", dsn, "-app-id", "killtest",
			"-broker", broker, "-node", fmt.Sprintf("node%d", i), "-node-lease", "2s", "-keywords", os.DevNull))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Clients spread over the nodes, all in one group.
	var clients []*loadClient
	for n := range nodes {
		for i := range clientsPerNode {
			id := fmt.Sprintf("c%d-%d", n, i)
			clients = append(clients, &loadClient{id: id, node: n, got: map[string]bool{}})
		}
	}
	for _, c := range clients {
		if err := c.connect(ctx, apps[c.node].ws, false); err != nil {
			t.Fatalf("%s: %v", c.id, err)
		}
	}
	var members []string
	for _, c := range clients {
		members = append(members, c.id)
	}
	conv, err := clients[0].conn().StartConversationWith(ctx, &wire.ConvCommand{M: members, N: proto.String("load")})
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	killAt := make(chan struct{})
	for _, c := range clients {
		c.conv = conv
		wg.Go(func() { c.receive(ctx) })
		wg.Go(func() { c.send(ctx, apps, killAt) })
	}
	// Kill node 2 once a third of the messages are out.
	time.Sleep(time.Duration(messagesEach/3) * sendEvery)
	killed := time.Now()
	if err := apps[2].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-apps[2].done
	close(killAt)
	t.Logf("node 2 killed with SIGKILL at %v", killed.Format("15:04:05.000"))

	// Wait until every sender is done.
	for _, c := range clients {
		select {
		case <-c.sentAll():
		case <-ctx.Done():
			t.Fatalf("%s did not finish sending: %d of %d acked", c.id, c.ackedCount(), messagesEach)
		}
	}

	// History: every acked message exactly once.
	st, err := store.Open(ctx, dsn, &store.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored := history(t, st, conv)
	count := map[string]int{}
	for _, m := range stored {
		count[m.ID]++
	}
	acked := map[string]bool{}
	for _, c := range clients {
		for _, id := range c.ackedIDs() {
			acked[id] = true
			if count[id] != 1 {
				t.Errorf("acked message %s of %s is in history %d times", id, c.id, count[id])
			}
		}
	}
	byDT := map[string]int{}
	for _, m := range stored {
		if m.ClientMsgID != "" {
			byDT[m.From+"/"+m.ClientMsgID]++
		}
	}
	for k, n := range byDT {
		if n != 1 {
			t.Errorf("message %s stored %d times", k, n)
		}
	}
	if want := len(clients) * messagesEach; len(acked) != want {
		t.Errorf("%d messages acked, want %d (every client resends until acked)", len(acked), want)
	}

	// Every client ends with every stored message: live, or from history
	// after reconnecting.
	for _, c := range clients {
		if err := c.catchUp(ctx, stored); err != nil {
			t.Errorf("%s (node %d): %v", c.id, c.node, err)
		}
	}
	// Survivors never stall: what survivors sent after the kill reached
	// the other survivors live.
	var after []*realtime.Message
	for _, m := range stored {
		if m.Timestamp > killed.Add(500*time.Millisecond).UnixMilli() && !strings.HasPrefix(m.From, "c2-") {
			after = append(after, m)
		}
	}
	for _, c := range clients {
		if c.node == 2 {
			continue
		}
		missed := 0
		for _, m := range after {
			if m.From != c.id && !c.gotLive(m.ID) {
				missed++
			}
		}
		if missed > 0 {
			t.Errorf("%s on a surviving node missed %d of %d live messages sent after the kill", c.id, missed, len(after))
		}
		if c.drops() > 0 {
			t.Errorf("%s on a surviving node lost its socket %d times", c.id, c.drops())
		}
	}
	for _, c := range clients {
		if c.node == 2 && c.reconnects() == 0 {
			t.Errorf("%s of the dead node never reconnected", c.id)
		}
	}
	cancel() // the receivers stop
	wg.Wait()
	t.Logf("%d messages stored, %d acked; the dead node's %d clients reconnected elsewhere", len(stored), len(acked), clientsPerNode)
	for _, a := range apps[:2] {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, a := range apps[:2] {
		select {
		case <-a.done:
		case <-time.After(15 * time.Second):
			t.Errorf("a node did not stop on SIGTERM; log:\n%s", a.out.String())
		}
	}
	if t.Failed() {
		for i, a := range apps {
			t.Logf("node %d log:\n%s", i, a.out.tail(4000))
		}
	}
}

// loadClient behaves like the SDK: it acks what it receives, resends
// what was not acked (same dt, so the server dedupes), and reconnects to
// another node when its socket drops.
type loadClient struct {
	id   string
	node int
	conv string

	mu        sync.Mutex
	c         *lcclient.Client
	token     string
	got       map[string]bool // received live
	acked     []string
	nDrops    int
	nReconn   int
	lastTS    int64
	doneSend  chan struct{}
	reconnect sync.Mutex
}

func (c *loadClient) conn() *lcclient.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c
}

func (c *loadClient) connect(ctx context.Context, ws string, again bool) error {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := lcclient.Dial(dctx, ws)
	if err != nil {
		return err
	}
	cl.AppID = "killtest"
	c.mu.Lock()
	o := lcclient.OpenOptions{Reconnect: again, SessionToken: c.token, LastUnreadNotifTime: c.lastTS}
	c.mu.Unlock()
	st, err := cl.Open(dctx, c.id, o)
	if err != nil {
		cl.Close()
		return err
	}
	c.mu.Lock()
	c.c, c.token = cl, st
	if c.doneSend == nil {
		c.doneSend = make(chan struct{})
	}
	c.mu.Unlock()
	return nil
}

// redial reconnects to a surviving node after the socket dropped.
func (c *loadClient) redial(ctx context.Context, apps []*app, dead *lcclient.Client) {
	c.reconnect.Lock()
	defer c.reconnect.Unlock()
	if c.conn() != dead {
		return // another goroutine reconnected already
	}
	c.mu.Lock()
	c.nDrops++
	c.mu.Unlock()
	for i := 0; ctx.Err() == nil; i++ {
		a := apps[i%2] // nodes 0 and 1 survive
		if err := c.connect(ctx, a.ws, true); err == nil {
			c.mu.Lock()
			c.nReconn++
			c.mu.Unlock()
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *loadClient) receive(ctx context.Context) {
	for ctx.Err() == nil {
		cl := c.conn()
		p, err := cl.Next(ctx)
		if err != nil {
			select {
			case <-cl.Done():
				// The sender notices the drop too and reconnects; wait.
				for c.conn() == cl && ctx.Err() == nil {
					time.Sleep(20 * time.Millisecond)
				}
				continue
			default:
				return
			}
		}
		if p.GetCmd() != wire.CommandType_direct {
			continue
		}
		d := p.GetDirectMessage()
		c.mu.Lock()
		c.got[d.GetId()] = true
		c.lastTS = max(c.lastTS, d.GetTimestamp())
		c.mu.Unlock()
		_ = cl.Ack(ctx, d.GetCid(), d.GetTimestamp(), d.GetTimestamp())
	}
}

func (c *loadClient) send(ctx context.Context, apps []*app, killed <-chan struct{}) {
	defer func() {
		c.mu.Lock()
		close(c.doneSend)
		c.mu.Unlock()
	}()
	for i := 0; i < messagesEach; i++ {
		dt := fmt.Sprintf("%s-%d", c.id, i)
		for ctx.Err() == nil {
			cl := c.conn()
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			res, err := cl.SendDirect(sctx, &wire.DirectCommand{Cid: proto.String(c.conv),
				Msg: proto.String(fmt.Sprintf(`{"_lctype":-1,"_lctext":"%s"}`, dt)), Dt: proto.String(dt)})
			cancel()
			if err == nil {
				c.mu.Lock()
				c.acked = append(c.acked, res.ID)
				c.mu.Unlock()
				break
			}
			select {
			case <-cl.Done():
				c.redial(ctx, apps, cl)
			default:
				time.Sleep(50 * time.Millisecond)
			}
		}
		time.Sleep(sendEvery)
	}
}

func (c *loadClient) sentAll() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.doneSend
}

func (c *loadClient) ackedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.acked)
}

func (c *loadClient) ackedIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.acked)
}

func (c *loadClient) gotLive(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[id]
}

func (c *loadClient) drops() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nDrops
}

func (c *loadClient) reconnects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nReconn
}

// catchUp fetches from history (as the SDK does after a reconnect) what
// the client did not get live, and checks it then has every message.
func (c *loadClient) catchUp(ctx context.Context, stored []*realtime.Message) error {
	cl := c.conn()
	have := map[string]bool{}
	c.mu.Lock()
	for id := range c.got {
		have[id] = true
	}
	c.mu.Unlock()
	var before int64
	for {
		l := &wire.LogsCommand{Cid: proto.String(c.conv), Limit: proto.Int32(100)}
		if before > 0 {
			l.T = proto.Int64(before)
		}
		items, err := cl.History(ctx, l)
		if err != nil {
			return fmt.Errorf("history: %w", err)
		}
		for _, it := range items {
			have[it.GetMsgId()] = true
			if before == 0 || it.GetTimestamp() < before {
				before = it.GetTimestamp()
			}
		}
		if len(items) < 100 {
			break
		}
	}
	missing := 0
	for _, m := range stored {
		if !have[m.ID] {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("%d of %d messages neither received nor in history", missing, len(stored))
	}
	return nil
}

func history(t *testing.T, st *store.SQL, conv string) []*realtime.Message {
	t.Helper()
	var all []*realtime.Message
	q := realtime.HistoryQuery{ConvID: conv, Direction: realtime.Newer, Limit: 1000}
	for {
		page, err := st.History(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < q.Limit {
			return all
		}
		last := page[len(page)-1]
		q.Start, q.StartMessageID, q.StartInclusive = last.Timestamp, last.ID, false
	}
}

// --- processes ---

func buildChat(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chat")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", bin, "../../examples/chat")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build examples/chat: %v\n%s", err, out)
	}
	return bin
}

var urlLine = regexp.MustCompile(`http://\S+`)

func start(t *testing.T, bin string, args ...string) *app {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir()
	out := &lockedBuffer{}
	cmd.Stderr = out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &app{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-a.done
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := urlLine.FindString(sc.Text()); m != "" {
				lines <- m
			}
		}
	}()
	select {
	case u := <-lines:
		pu, _ := url.Parse(strings.TrimRight(u, "/"))
		a.ws = "ws://" + pu.Host + "/im/ws"
	case <-a.done:
		t.Fatalf("examples/chat exited at start:\n%s", out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("examples/chat printed no URL:\n%s", out.String())
	}
	return a
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) tail(n int) string {
	s := l.String()
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func freshSchema(t *testing.T, base string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "killtest_" + hex.EncodeToString(b[:])
	admin := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(base)))
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func natsURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("REALTIME_TEST_NATS_URL")
	if u == "" {
		u = "nats://127.0.0.1:4222"
	}
	pu, _ := url.Parse(u)
	c, err := net.DialTimeout("tcp", pu.Host, time.Second)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("NATS is not reachable at %s: %v", u, err)
		}
		t.Skipf("NATS run skipped: no NATS server at %s", u)
	}
	c.Close()
	return u
}

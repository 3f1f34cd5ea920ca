package hub_test

// Benchmarks of the hub's hot paths (DESIGN.md, "Performance design"): 1:1
// send/deliver, group fan-out and login with unread sync, each on SQLite
// and, when REALTIME_TEST_POSTGRES_DSN is set, PostgreSQL. Send/deliver and
// fan-out also run a raw websocket baseline in the same process and run
// (same frame size, same one-reader/one-writer-per-socket shape, no
// protocol, no store), and report the hub's rate as a ratio to it (x-raw),
// so the figures compare across machines.
//
//	go test -run '^$' -bench . -benchtime 2s ./hub
//	REALTIME_BENCH_PAIRS=50 REALTIME_BENCH_MEMBERS=100 go test -run '^$' -bench . -benchtime 1x ./hub
//
// Setup (stores, hubs, logins) happens once per backend, outside the timed
// sub-benchmark; the timed part of Send/Fanout runs b.N messages to
// completion (every one delivered) per call.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
	"github.com/leanhub/realtime/store"
)

const (
	// benchTextLen is the length of the text in every benchmark message
	// (the _lctext of a TextMessage, ~135 bytes of body in all).
	benchTextLen = 100
	// benchWindow is how many fan-out messages may be sent and not yet
	// delivered to every recipient. It stays well under the hub's
	// per-socket outbound queue (Limits.OutboundQueue, 1024 by default), so
	// the benchmark measures throughput, not slow-consumer closes.
	benchWindow = 256
	// benchSetupWorkers bounds concurrent logins and store writes in setup.
	benchSetupWorkers = 16
)

// benchEnvInt reads a positive integer override from the environment.
func benchEnvInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

type benchBackend struct {
	name string
	open func(b *testing.B) realtime.Store
}

// benchBackends are the stores each benchmark runs on: SQLite (a file in
// b.TempDir()) always, PostgreSQL when REALTIME_TEST_POSTGRES_DSN is set.
// backends in hub_test.go takes a *testing.T, hence this twin.
func benchBackends() []benchBackend {
	out := []benchBackend{{"sqlite", func(b *testing.B) realtime.Store {
		st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "hub.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		return st
	}}}
	if dsn := os.Getenv("REALTIME_TEST_POSTGRES_DSN"); dsn != "" {
		out = append(out, benchBackend{"postgres", func(b *testing.B) realtime.Store {
			st, err := store.Open(context.Background(), dsn, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		}})
	}
	return out
}

// benchConfig is the hub configuration of every benchmark.
func benchConfig() *hub.Config {
	return &hub.Config{
		// Warnings (slow consumers, failed hooks) still show.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Limits: hub.Limits{
			// The per-client send limit (SendRate 50/s, SendBurst 100 by
			// default) would cap a client far below what the hub can do,
			// and these benchmarks measure throughput, not the limiter:
			// make it generous.
			SendRate:  1e9,
			SendBurst: 1 << 30,
			// A 1,000-member conversation (default limit 500).
			MaxMembers: 1 << 14,
			// OutboundQueue stays at its default (1024): the 1:1 senders
			// wait for their acks and the fan-out sender keeps at most
			// benchWindow messages in flight, so no queue comes near it.
		},
	}
}

// benchPrefix makes client ids unique per run: the PostgreSQL database is
// shared between runs.
func benchPrefix() string {
	return fmt.Sprintf("b%x-", time.Now().UnixNano()&0xffffffffff)
}

// benchParallel runs f(0..n-1) on a few goroutines and returns the first
// error.
func benchParallel(n int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		first firstErr
		next  atomic.Int64
	)
	for range min(n, benchSetupWorkers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || first.get() != nil {
					return
				}
				if err := f(i); err != nil {
					first.set(err)
				}
			}
		})
	}
	wg.Wait()
	return first.get()
}

type firstErr struct {
	mu  sync.Mutex
	err error
}

func (f *firstErr) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstErr) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// createConvs creates one conversation per member list through the store.
func createConvs(b *testing.B, st realtime.Store, members [][]string) []string {
	ids := make([]string, len(members))
	err := benchParallel(len(members), func(i int) error {
		c, _, err := st.CreateConversation(context.Background(), &realtime.Conversation{Members: members[i]})
		if err != nil {
			return err
		}
		ids[i] = c.ID
		return nil
	})
	if err != nil {
		b.Fatal("create conversations:", err)
	}
	return ids
}

// loginAll dials one socket per client id and opens its session. The
// clients are closed (and their read loops waited for) when b ends, before
// the hub shuts down.
func loginAll(b *testing.B, srv *testServer, ids []string) []*lcclient.Client {
	clients := make([]*lcclient.Client, len(ids))
	b.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
		for _, c := range clients {
			if c != nil {
				<-c.Done()
			}
		}
	})
	err := benchParallel(len(ids), func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := lcclient.Dial(ctx, srv.WebsocketURL())
		if err != nil {
			return err
		}
		clients[i] = c
		c.AppID = srv.AppID
		if _, err := c.Open(ctx, ids[i], lcclient.OpenOptions{}); err != nil {
			return fmt.Errorf("open %s: %w", ids[i], err)
		}
		return nil
	})
	if err != nil {
		b.Fatal("login:", err)
	}
	return clients
}

// benchText is the text of message seq sent at sentAt (Unix ns), padded to
// benchTextLen.
func benchText(seq, sentAt int64) string {
	s := strconv.FormatInt(seq, 10) + " " + strconv.FormatInt(sentAt, 10) + " "
	return s + strings.Repeat("x", max(0, benchTextLen-len(s)))
}

// parseBenchBody reads seq and sentAt back from a delivered body, which
// lcclient.SendText made {"_lctext":"...","_lctype":-1}.
func parseBenchBody(data string) (seq, sentAt int64, err error) {
	s, ok := strings.CutPrefix(data, `{"_lctext":"`)
	a, rest, ok2 := strings.Cut(s, " ")
	c, _, ok3 := strings.Cut(rest, " ")
	if !ok || !ok2 || !ok3 {
		return 0, 0, fmt.Errorf("unexpected body %q", data)
	}
	if seq, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, err
	}
	sentAt, err = strconv.ParseInt(c, 10, 64)
	return seq, sentAt, err
}

// hubFrameSize is the size of the hub's push of a benchmark message from
// one client to another: the raw baselines send frames of this size.
func hubFrameSize(from, to string) int {
	now := time.Now()
	return proto.Size(&wire.GenericCommand{
		Cmd: wire.CommandType_direct.Enum(), Service: proto.Int32(2), ServerTs: proto.Int64(now.UnixMilli()), PeerId: proto.String(to),
		DirectMessage: &wire.DirectCommand{
			Id: proto.String(strings.Repeat("0", 24)), Cid: proto.String(strings.Repeat("0", 24)), FromPeerId: proto.String(from),
			Timestamp: proto.Int64(now.UnixMilli()), Msg: proto.String(text(benchText(1<<20, now.UnixNano()))), MentionAll: proto.Bool(false),
		},
	})
}

// benchPeer is one benchmark client: a hubtest client in a conversation, or
// a raw websocket.
type benchPeer interface {
	// send sends message seq to peer to (-1: everyone else) and returns
	// once the server has acknowledged it.
	send(ctx context.Context, to int, seq, sentAt int64) error
	// recv returns the next message delivered.
	recv(ctx context.Context) (seq, sentAt int64, err error)
}

type hubPeer struct {
	c   *lcclient.Client
	cid string // every message goes to this conversation
}

func (p hubPeer) send(ctx context.Context, _ int, seq, sentAt int64) error {
	_, err := p.c.SendText(ctx, p.cid, benchText(seq, sentAt))
	return err
}

func (p hubPeer) recv(ctx context.Context) (int64, int64, error) {
	m, err := p.c.NextMessage(ctx)
	if err != nil {
		return 0, 0, err
	}
	return parseBenchBody(m.Data)
}

// percentile returns the q-quantile of sorted d in milliseconds.
func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(q*float64(len(sorted)-1))]) / float64(time.Millisecond)
}

func reportLatency(b *testing.B, lat [][]time.Duration) {
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(percentile(all, 0.50), "p50-ms")
	b.ReportMetric(percentile(all, 0.99), "p99-ms")
}

// run1to1 has every peer send its share of b.N messages to its partner
// (peer i^1), each waiting for its ack before the next, and returns the
// rate of messages delivered.
func run1to1(b *testing.B, peers []benchPeer) float64 {
	n := len(peers)
	quota := func(i int) int {
		q := b.N / n
		if i < b.N%n {
			q++
		}
		return q
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		wg     sync.WaitGroup
		failed firstErr
		lat    = make([][]time.Duration, n)
	)
	fail := func(err error) {
		failed.set(err)
		cancel()
	}
	b.ResetTimer()
	start := time.Now()
	for i, p := range peers {
		partner := i ^ 1
		wg.Go(func() {
			for k := range quota(i) {
				if err := p.send(ctx, partner, int64(k), time.Now().UnixNano()); err != nil {
					fail(fmt.Errorf("peer %d send: %w", i, err))
					return
				}
			}
		})
		wg.Go(func() {
			want := quota(partner)
			l := make([]time.Duration, 0, want)
			for range want {
				_, sentAt, err := p.recv(ctx)
				if err != nil {
					fail(fmt.Errorf("peer %d receive: %w", i, err))
					return
				}
				l = append(l, time.Duration(time.Now().UnixNano()-sentAt))
			}
			lat[i] = l
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.get(); err != nil {
		b.Fatal(err)
	}
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "msgs/s")
	reportLatency(b, lat)
	return rate
}

// runFanout has sender send b.N messages to every receiver, with at most
// benchWindow messages not yet delivered to all, and returns the rate of
// deliveries (messages x receivers).
func runFanout(b *testing.B, sender benchPeer, receivers []benchPeer) float64 {
	r := len(receivers)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		wg     sync.WaitGroup
		failed firstErr
		lat    = make([][]time.Duration, r)
		// ring counts deliveries of message seq in ring[seq%len]; the
		// receiver completing a message resets its slot and says so on
		// completed. Every socket gets the messages in order, so messages
		// complete in order and a slot is free again before reuse.
		ring      = make([]atomic.Int32, 4*benchWindow)
		completed = make(chan struct{}, 4*benchWindow)
	)
	fail := func(err error) {
		failed.set(err)
		cancel()
	}
	b.ResetTimer()
	start := time.Now()
	for i, p := range receivers {
		wg.Go(func() {
			var l []time.Duration
			for range b.N {
				seq, sentAt, err := p.recv(ctx)
				if err != nil {
					fail(fmt.Errorf("receiver %d: %w", i, err))
					return
				}
				if i%10 == 0 { // latency of a sample of receivers
					l = append(l, time.Duration(time.Now().UnixNano()-sentAt))
				}
				slot := &ring[seq%int64(len(ring))]
				if slot.Add(1) == int32(r) {
					slot.Store(0)
					completed <- struct{}{}
				}
			}
			lat[i] = l
		})
	}
	done := 0
	wait := func() bool {
		select {
		case <-completed:
			done++
			return true
		case <-ctx.Done():
			return false
		}
	}
send:
	for i := range b.N {
		for i-done >= benchWindow {
			if !wait() {
				break send
			}
		}
		if err := sender.send(ctx, -1, int64(i), time.Now().UnixNano()); err != nil {
			fail(fmt.Errorf("send: %w", err))
			break
		}
	}
	for done < b.N && wait() {
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.get(); err != nil {
		b.Fatal(err)
	}
	if done < b.N {
		b.Fatal("fan-out timed out:", ctx.Err())
	}
	rate := float64(b.N) * float64(r) / elapsed.Seconds()
	b.ReportMetric(rate, "deliveries/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	reportLatency(b, lat)
	return rate
}

// BenchmarkSendDeliver1to1: REALTIME_BENCH_PAIRS (500) pairs of clients,
// each pair in its own 1:1 conversation, every client sending to its
// partner concurrently (each send waits for its ack, as the SDKs do).
// Reports persisted messages delivered per second and send-to-receive
// latency; raw-websocket is the same traffic relayed by a bare websocket
// server.
func BenchmarkSendDeliver1to1(b *testing.B) {
	pairs := benchEnvInt(b, "REALTIME_BENCH_PAIRS", 500)
	name := fmt.Sprintf("pairs=%d", pairs)
	prefix := benchPrefix()
	size := hubFrameSize(prefix+"p0000a", prefix+"p0000b")
	var raw float64
	b.Run("raw-websocket", func(b *testing.B) {
		peers := dialRawPeers(b, newRawServer(b), 2*pairs, size)
		b.Run(name, func(b *testing.B) { raw = run1to1(b, peers) })
	})
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			st := be.open(b)
			srv := newServer(b, st, benchConfig())
			prefix := benchPrefix()
			ids := make([]string, 0, 2*pairs)
			members := make([][]string, pairs)
			for k := range pairs {
				a, c := fmt.Sprintf("%sp%04da", prefix, k), fmt.Sprintf("%sp%04db", prefix, k)
				ids = append(ids, a, c)
				members[k] = []string{a, c}
			}
			convs := createConvs(b, st, members)
			clients := loginAll(b, srv, ids)
			peers := make([]benchPeer, len(clients))
			for i, c := range clients {
				peers[i] = hubPeer{c: c, cid: convs[i/2]}
			}
			// One message per conversation, 16 at a time, before timing:
			// the timed part measures the steady state, not the hub's cold
			// conversation cache (1,000 concurrent first sends each load
			// their conversation from the store at once; on PostgreSQL that
			// opens a connection each and fails with "too many clients").
			err := benchParallel(pairs, func(k int) error {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := peers[2*k].send(ctx, 2*k+1, 0, time.Now().UnixNano()); err != nil {
					return err
				}
				_, _, err := peers[2*k+1].recv(ctx)
				return err
			})
			if err != nil {
				b.Fatal("warm-up:", err)
			}
			b.Run(name, func(b *testing.B) {
				rate := run1to1(b, peers)
				if raw > 0 {
					b.ReportMetric(rate/raw, "x-raw")
				}
			})
		})
	}
}

// BenchmarkFanout: one sender in a REALTIME_BENCH_MEMBERS (1,000) member
// conversation, every member online on its own socket. Reports deliveries
// (messages x recipients) per second; raw-websocket is a bare websocket
// server broadcasting frames of the same size to as many sockets.
func BenchmarkFanout(b *testing.B) {
	members := benchEnvInt(b, "REALTIME_BENCH_MEMBERS", 1000)
	if members < 2 {
		b.Fatal("REALTIME_BENCH_MEMBERS must be at least 2")
	}
	name := fmt.Sprintf("members=%d", members)
	prefix := benchPrefix()
	size := hubFrameSize(prefix+"m0000", prefix+"m0001")
	var raw float64
	b.Run("raw-websocket", func(b *testing.B) {
		peers := dialRawPeers(b, newRawServer(b), members, size)
		b.Run(name, func(b *testing.B) { raw = runFanout(b, peers[0], peers[1:]) })
	})
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			st := be.open(b)
			srv := newServer(b, st, benchConfig())
			prefix := benchPrefix()
			ids := make([]string, members)
			for i := range ids {
				ids[i] = fmt.Sprintf("%sm%04d", prefix, i)
			}
			cid := createConvs(b, st, [][]string{ids})[0]
			clients := loginAll(b, srv, ids)
			peers := make([]benchPeer, len(clients))
			for i, c := range clients {
				peers[i] = hubPeer{c: c, cid: cid}
			}
			b.Run(name, func(b *testing.B) {
				rate := runFanout(b, peers[0], peers[1:])
				if raw > 0 {
					b.ReportMetric(rate/raw, "x-raw")
				}
			})
		})
	}
}

// BenchmarkLoginSync: a client in 1,000 conversations, 100 of them with
// unread messages. Each iteration dials, opens a session, waits for the
// unread notification (100 tuples) and drops the socket; sequential is one
// login at a time, parallel 8 per CPU.
func BenchmarkLoginSync(b *testing.B) {
	const convs, unread = 1000, 100
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			st := be.open(b)
			srv := newServer(b, st, benchConfig())
			prefix := benchPrefix()
			me := prefix + "me"
			members := make([][]string, convs)
			for i := range members {
				members[i] = []string{me, fmt.Sprintf("%speer%04d", prefix, i)}
			}
			ids := createConvs(b, st, members)
			msgs := make([]*realtime.Message, unread)
			for i := range msgs {
				msgs[i] = &realtime.Message{ConvID: ids[i], From: members[i][1], Data: text(benchText(int64(i), 0)),
					ClientMsgID: fmt.Sprintf("%sdt%d", prefix, i)}
			}
			res, err := st.AppendMessages(context.Background(), msgs)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			login := func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				c, err := lcclient.Dial(ctx, srv.WebsocketURL())
				if err != nil {
					return err
				}
				defer func() {
					c.Close()
					<-c.Done()
				}()
				c.AppID = srv.AppID
				if _, err := c.Open(ctx, me, lcclient.OpenOptions{}); err != nil {
					return err
				}
				p, err := c.NextOf(ctx, wire.CommandType_unread)
				if err != nil {
					return fmt.Errorf("waiting for unread: %w", err)
				}
				if n := len(p.GetUnreadMessage().GetConvs()); n != unread {
					return fmt.Errorf("unread push with %d conversations, want %d", n, unread)
				}
				return nil
			}
			// The baseline: one bare indexed SELECT of the client's unread
			// memberships per login, what the store cannot do with less.
			var bare float64
			if sq, ok := st.(*store.SQL); ok {
				b.Run("bare-select", func(b *testing.B) {
					ctx := context.Background()
					for b.Loop() {
						var rows []struct {
							ConvID  string `bun:"conv_id"`
							ReadSeq int64  `bun:"read_seq"`
						}
						if err := sq.DB().NewRaw("SELECT conv_id, read_seq FROM members WHERE client_id = ? AND conv_seq > read_seq", me).
							Scan(ctx, &rows); err != nil || len(rows) != unread {
							b.Fatal(len(rows), err)
						}
					}
					bare = float64(b.N) / b.Elapsed().Seconds()
					b.ReportMetric(bare, "selects/s")
				})
			}
			b.Run("sequential", func(b *testing.B) {
				for b.Loop() {
					if err := login(); err != nil {
						b.Fatal(err)
					}
				}
				rate := float64(b.N) / b.Elapsed().Seconds()
				b.ReportMetric(rate, "logins/s")
				if bare > 0 {
					b.ReportMetric(rate/bare, "x-bare")
				}
			})
			b.Run("parallel", func(b *testing.B) {
				var failed firstErr
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if failed.get() != nil {
							continue
						}
						if err := login(); err != nil {
							failed.set(err)
						}
					}
				})
				if err := failed.get(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
			})
		})
	}
}

// The raw baseline: a websocket relay with the hub's socket shape (one
// reader, one writer goroutine draining a bounded queue, a full queue
// closes the socket) and nothing else. A client's first frame is its id
// (4 bytes); every later frame starts with the target id (rawBroadcast:
// everyone else), is relayed as is and acknowledged to the sender with a
// 1-byte frame, ack first as the hub does.

const rawBroadcast = ^uint32(0)

type rawServer struct {
	srv  *httptest.Server
	wg   sync.WaitGroup // handlers and writers
	slow atomic.Int64   // sockets closed as slow consumers

	mu    sync.RWMutex
	conns map[uint32]*rawConn
}

type rawConn struct {
	ws   *websocket.Conn
	out  chan []byte
	quit chan struct{}
	once sync.Once
}

func newRawServer(b *testing.B) *rawServer {
	rs := &rawServer{conns: make(map[uint32]*rawConn)}
	rs.srv = httptest.NewServer(http.HandlerFunc(rs.serve))
	b.Cleanup(func() {
		// Clients are closed first (registered later), so handlers end.
		done := make(chan struct{})
		go func() {
			rs.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			b.Error("raw server handlers still running")
		}
		rs.srv.Close()
		if n := rs.slow.Load(); n > 0 {
			b.Errorf("raw server closed %d slow consumers", n)
		}
	})
	return rs
}

func (c *rawConn) close() { c.once.Do(func() { close(c.quit) }) }

func (rs *rawServer) enqueue(c *rawConn, frame []byte) {
	select {
	case c.out <- frame:
	case <-c.quit:
	default:
		rs.slow.Add(1)
		c.close()
	}
}

func (rs *rawServer) serve(w http.ResponseWriter, r *http.Request) {
	rs.wg.Add(1)
	defer rs.wg.Done()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 20)
	c := &rawConn{ws: ws, out: make(chan []byte, 1024), quit: make(chan struct{})}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for {
			select {
			case f := <-c.out:
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := ws.Write(ctx, websocket.MessageBinary, f)
				cancel()
				if err != nil {
					c.close()
					ws.CloseNow()
					return
				}
			case <-c.quit:
				ws.CloseNow()
				return
			}
		}
	}()
	ack := []byte{1}
	var id uint32
	registered := false
	defer func() {
		if registered {
			rs.mu.Lock()
			if rs.conns[id] == c {
				delete(rs.conns, id)
			}
			rs.mu.Unlock()
		}
		c.close()
		<-writerDone
	}()
	for {
		_, frame, err := ws.Read(context.Background())
		if err != nil || len(frame) < 4 {
			return
		}
		to := binary.BigEndian.Uint32(frame)
		if !registered {
			id, registered = to, true
			rs.mu.Lock()
			rs.conns[id] = c
			rs.mu.Unlock()
			rs.enqueue(c, ack)
			continue
		}
		rs.enqueue(c, ack)
		rs.mu.RLock()
		if to == rawBroadcast {
			for _, o := range rs.conns {
				if o != c {
					rs.enqueue(o, frame)
				}
			}
		} else if o := rs.conns[to]; o != nil {
			rs.enqueue(o, frame)
		}
		rs.mu.RUnlock()
	}
}

// rawPeer is a raw client: a read loop sorting acks from messages, as
// lcclient.Client does with replies and pushes.
type rawPeer struct {
	ws   *websocket.Conn
	size int
	acks chan struct{}
	msgs chan [2]int64 // seq, sentAt
	done chan struct{}
}

func dialRawPeers(b *testing.B, rs *rawServer, n, size int) []benchPeer {
	peers := make([]*rawPeer, n)
	b.Cleanup(func() {
		for _, p := range peers {
			if p != nil {
				p.ws.CloseNow()
			}
		}
		for _, p := range peers {
			if p != nil {
				<-p.done
			}
		}
	})
	url := "ws" + strings.TrimPrefix(rs.srv.URL, "http")
	err := benchParallel(n, func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			return err
		}
		ws.SetReadLimit(1 << 20)
		p := &rawPeer{ws: ws, size: size, acks: make(chan struct{}, 16), msgs: make(chan [2]int64, 4096), done: make(chan struct{})}
		peers[i] = p
		go p.readLoop()
		hello := binary.BigEndian.AppendUint32(nil, uint32(i))
		if err := ws.Write(ctx, websocket.MessageBinary, hello); err != nil {
			return err
		}
		return p.waitAck(ctx)
	})
	if err != nil {
		b.Fatal("raw dial:", err)
	}
	out := make([]benchPeer, n)
	for i, p := range peers {
		out[i] = p
	}
	return out
}

func (p *rawPeer) readLoop() {
	defer close(p.done)
	for {
		_, f, err := p.ws.Read(context.Background())
		if err != nil {
			return
		}
		if len(f) == 1 {
			p.acks <- struct{}{}
			continue
		}
		if len(f) < 20 {
			continue
		}
		select {
		case p.msgs <- [2]int64{int64(binary.BigEndian.Uint64(f[4:])), int64(binary.BigEndian.Uint64(f[12:]))}:
		default: // as hubtest: never block the socket
		}
	}
}

var errRawClosed = errors.New("raw websocket closed")

func (p *rawPeer) waitAck(ctx context.Context) error {
	select {
	case <-p.acks:
		return nil
	case <-p.done:
		return errRawClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *rawPeer) send(ctx context.Context, to int, seq, sentAt int64) error {
	f := make([]byte, max(p.size, 20))
	target := rawBroadcast
	if to >= 0 {
		target = uint32(to)
	}
	binary.BigEndian.PutUint32(f, target)
	binary.BigEndian.PutUint64(f[4:], uint64(seq))
	binary.BigEndian.PutUint64(f[12:], uint64(sentAt))
	for i := 20; i < len(f); i++ {
		f[i] = 'x'
	}
	if err := p.ws.Write(ctx, websocket.MessageBinary, f); err != nil {
		return err
	}
	return p.waitAck(ctx)
}

func (p *rawPeer) recv(ctx context.Context) (int64, int64, error) {
	select {
	case m := <-p.msgs:
		return m[0], m[1], nil
	case <-p.done:
		select {
		case m := <-p.msgs:
			return m[0], m[1], nil
		default:
		}
		return 0, 0, errRawClosed
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
}

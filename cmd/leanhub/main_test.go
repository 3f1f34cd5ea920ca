package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/pgtest"
	"github.com/leanhub/realtime/internal/wire"
	"github.com/leanhub/realtime/store"
)

// These tests run the real binary: flags, environment, signals and exit
// codes are what they check.

var binPath string

func TestMain(m *testing.M) {
	cleanup := pgtest.IsolateProcess("leanhub_cmd")
	dir, err := os.MkdirTemp("", "leanhub-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "leanhub")
	if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/leanhub: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	cleanup()
	os.Exit(code)
}

type proc struct {
	cmd   *exec.Cmd
	out   *lockedBuffer // stdout and stderr
	url   string        // http://host:port/im
	root  string        // http://host:port
	admin string        // the -admin-addr URL, else root
	ws    string
	done  chan struct{}
	start time.Time
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var servingLine = regexp.MustCompile(`^leanhub: serving (https?://\S+)(?: \(admin (http://\S+)\))?`)

// leanhubEnv is the test process's environment without LEANHUB_* (a
// developer's settings must not leak into the tests).
func leanhubEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// startProc starts leanhub in a fresh folder and waits for its URL line.
func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.Dir = t.TempDir()
	cmd.Env = leanhubEnv(env...)
	p := &proc{cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{}), start: time.Now()}
	cmd.Stderr = p.out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(p.out, sc.Text())
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				lines <- m
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	select {
	case m := <-lines:
		p.url = m[1]
		p.root = strings.TrimSuffix(p.url, "/im")
		p.admin = cmp.Or(m[2], p.root)
		p.ws = "ws" + strings.TrimPrefix(p.url, "http")
	case <-p.done:
		t.Fatalf("leanhub exited at start:\n%s", p.out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("leanhub printed no URL:\n%s", p.out.String())
	}
	return p
}

// stop sends SIGTERM and waits for the exit; it returns the exit code and
// how long the process took after the signal.
func (p *proc) stop(t *testing.T, within time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("leanhub still running %v after SIGTERM:\n%s", within, p.out.String())
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

// backends are the -db values to run on: a SQLite file, and PostgreSQL
// when REALTIME_TEST_POSTGRES_DSN is set (required under CI).
func backends(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return filepath.Join(t.TempDir(), "hub.db") },
		"postgres": func(t *testing.T) string {
			base := os.Getenv(pgtest.Env)
			if base == "" {
				if os.Getenv("CI") != "" {
					t.Fatalf("%s is not set", pgtest.Env)
				}
				t.Skipf("PostgreSQL tests skipped: set %s", pgtest.Env)
			}
			dsn, drop, err := pgtest.NewSchema(base, "leanhub_cmd_t")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = drop() })
			return dsn
		},
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func text(s string) string { return `{"_lctype":-1,"_lctext":"` + s + `"}` }

func login(t *testing.T, ctx context.Context, p *proc, appID, clientID string) *lcclient.Client {
	t.Helper()
	c, err := lcclient.Dial(ctx, p.ws)
	if err != nil {
		t.Fatalf("dial %s: %v", p.ws, err)
	}
	t.Cleanup(c.Close)
	c.AppID = appID
	if _, err := c.Open(ctx, clientID, lcclient.OpenOptions{}); err != nil {
		t.Fatalf("login %s: %v", clientID, err)
	}
	return c
}

// scrape reads /metrics into series -> value ("name{labels}" as printed).
func scrape(t *testing.T, root string) map[string]float64 {
	t.Helper()
	res, err := http.Get(root + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("/metrics: %s", res.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func status(t *testing.T, u string) int {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		return -1
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func TestServesSDKSessionsAndCountsThemInMetrics(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := ctxT(t, 60*time.Second)
			p := startProc(t, nil, "-db", db(t), "-app-id", "cmd-app", "-drain-delay", "0s")
			if s := status(t, p.root+"/healthz"); s != 200 {
				t.Fatalf("/healthz = %d", s)
			}
			if s := status(t, p.root+"/readyz"); s != 200 {
				t.Fatalf("/readyz = %d:\n%s", s, p.out.String())
			}
			before := scrape(t, p.root)

			tom := login(t, ctx, p, "cmd-app", "tom")
			jerry := login(t, ctx, p, "cmd-app", "jerry")
			cid, err := tom.StartConversation(ctx, "jerry")
			if err != nil {
				t.Fatal(err)
			}
			// A first message, received, tells jerry's login sync is over:
			// from then on every message is a live delivery.
			if _, err := tom.SendText(ctx, cid, text("warm-up")); err != nil {
				t.Fatal(err)
			}
			if _, err := jerry.NextMessage(ctx); err != nil {
				t.Fatal(err)
			}
			mid := scrape(t, p.root)
			const n = 5
			for i := range n {
				if _, err := tom.SendText(ctx, cid, text(fmt.Sprint("hello ", i))); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
				m, err := jerry.NextMessage(ctx)
				if err != nil {
					t.Fatalf("jerry receives %d: %v", i, err)
				}
				if !strings.Contains(m.Data, fmt.Sprint("hello ", i)) {
					t.Fatalf("jerry got %q", m.Data)
				}
			}
			// A login for another app is refused with 4100 and counted.
			other, err := lcclient.Dial(ctx, p.ws)
			if err != nil {
				t.Fatal(err)
			}
			other.AppID = "not-this-app"
			_, err = other.Open(ctx, "spike", lcclient.OpenOptions{})
			var rerr *realtime.Error
			if !errors.As(err, &rerr) || rerr.Code != 4100 {
				t.Fatalf("login for another app: %v, want 4100", err)
			}
			other.Close()

			after := scrape(t, p.root)
			for series, want := range map[string]float64{
				"leanhub_sessions_opened_total":             2,
				"leanhub_sessions_open":                     2,
				`leanhub_login_failures_total{code="4100"}`: 1,
				"leanhub_sockets_opened_total":              3,
				`leanhub_commands_total{cmd="direct"}`:      n + 1,
				"leanhub_messages_stored_total":             n + 1,
			} {
				if got := after[series] - before[series]; got != want {
					t.Errorf("%s moved by %v over the session, want %v", series, got, want)
				}
			}
			for series, want := range map[string]float64{
				`leanhub_commands_total{cmd="direct"}`: n,
				"leanhub_messages_stored_total":        n,
				"leanhub_messages_delivered_total":     n,
				"leanhub_deliveries_total":             n,
				"leanhub_store_commit_seconds_count":   n,
			} {
				if got := after[series] - mid[series]; got != want {
					t.Errorf("%s moved by %v over %d sends, want %v", series, got, n, want)
				}
			}
			if after["leanhub_ready"] != 1 {
				t.Errorf("leanhub_ready = %v, want 1", after["leanhub_ready"])
			}
			if code, took := p.stop(t, 30*time.Second); code != 0 {
				t.Fatalf("exit %d after %v:\n%s", code, took, p.out.String())
			}
		})
	}
}

func TestBadSettingsFailClearly(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(cfg, []byte("ADDR=127.0.0.1:0\nLEANHUB_NO_SUCH_THING=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"negative flag", []string{"-max-members", "-1"}, nil, "must not be negative"},
		{"bad duration in env", nil, []string{"LEANHUB_PING_INTERVAL=soon"}, "LEANHUB_PING_INTERVAL: not a duration"},
		{"bad rate", []string{"-send-rate", "x"}, nil, "-send-rate"},
		{"bad log format", []string{"-log-format", "xml"}, nil, "-log-format \"xml\": want text or json"},
		{"bad prefix", []string{"-prefix", "/"}, nil, "-prefix \"/\""},
		{"broker without postgres", []string{"-broker", "postgres"}, nil, "-db must be a postgres:// URL"},
		{"unknown config key", []string{"-config", cfg}, nil, "unknown key LEANHUB_NO_SUCH_THING"},
		{"signatures without master key", []string{"-require-login-signature"}, nil, "LEANHUB_MASTER_KEY is not set"},
		{"bad conversation rate", nil, []string{"LEANHUB_CONVERSATION_RATE=5:zero"}, "positive burst"},
		{"stray argument", []string{"serve"}, nil, "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binPath, append([]string{"-addr", "127.0.0.1:0"}, tc.args...)...)
			cmd.Dir = t.TempDir()
			cmd.Env = leanhubEnv(tc.env...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("exit %v, want non-zero; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("output does not say %q:\n%s", tc.want, out)
			}
		})
	}
}

func TestPrecedenceFlagOverEnvOverConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "leanhub.conf")
	conf := "# test\nLEANHUB_PREFIX=/fromfile\nAPP_ID=file-app\nLOG_FORMAT=json\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parseOptions([]string{"-config", cfg, "-app-id", "flag-app"}, func(k string) string {
		return map[string]string{"LEANHUB_APP_ID": "env-app", "LEANHUB_LOG_FORMAT": "text"}[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.appID != "flag-app" || o.logFormat != "text" || o.prefix != "/fromfile" {
		t.Fatalf("app id %q (flag), log format %q (env), prefix %q (file)", o.appID, o.logFormat, o.prefix)
	}
}

func TestSecretsNeverAppearInOutput(t *testing.T) {
	const master, webhook, session = "master-SECRET-1f3a9", "webhook-SECRET-77c2", "session-SECRET-a0b1"
	dir := t.TempDir()
	wfile := filepath.Join(dir, "webhook-secret")
	if err := os.WriteFile(wfile, []byte(webhook+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 60*time.Second)
	p := startProc(t, []string{"LEANHUB_MASTER_KEY=" + master, "LEANHUB_SESSION_SECRET=" + session},
		"-db", filepath.Join(dir, "s.db"), "-log-level", "debug", "-log-format", "json",
		"-webhook-url", "http://127.0.0.1:1/push", "-webhook-secret-file", wfile, "-drain-delay", "0s")
	c := login(t, ctx, p, "any", "secret-keeper")
	cid, err := c.StartConversation(ctx, "secret-friend")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendText(ctx, cid, text("psst")); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.stop(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.out.String())
	}
	out := p.out.String()
	if !strings.Contains(out, `"master-key":"[redacted, from environment]"`) {
		t.Errorf("the config summary does not say the master key is set:\n%s", out)
	}
	for _, s := range []string{master, webhook, session} {
		if strings.Contains(out, s) {
			t.Errorf("output contains the secret %q:\n%s", s, out)
		}
	}
	// A failing start does not print it either.
	cmd := exec.Command(binPath, "-addr", "127.0.0.1:0", "-require-login-signature", "-log-format", "bogus")
	cmd.Dir = t.TempDir()
	cmd.Env = leanhubEnv("LEANHUB_WEBHOOK_SECRET=" + webhook)
	bad, _ := cmd.CombinedOutput()
	if strings.Contains(string(bad), webhook) {
		t.Errorf("error output contains the secret:\n%s", bad)
	}
}

// TestSigtermDrainsUnderLoad: senders keep sending while leanhub gets
// SIGTERM. /readyz must turn 503 first, every client must get goaway, every
// acknowledged message must be in the store, and the process must exit 0
// within drain-delay + drain-timeout + shutdown-timeout.
func TestSigtermDrainsUnderLoad(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			const (
				drainDelay   = 500 * time.Millisecond
				drainTimeout = 2 * time.Second
				shutdown     = 5 * time.Second
				senders      = 20
			)
			dsn := db(t)
			ctx := ctxT(t, 90*time.Second)
			p := startProc(t, nil, "-db", dsn, "-drain-delay", drainDelay.String(),
				"-drain-timeout", drainTimeout.String(), "-shutdown-timeout", shutdown.String(),
				"-send-rate", "1000", "-send-burst", "1000")

			type acked struct{ conv, id string }
			var (
				mu     sync.Mutex
				acks   []acked
				goaway = make(chan string, senders)
				wg     sync.WaitGroup
			)
			startLine := make(chan struct{})
			for i := range senders {
				c := login(t, ctx, p, "any", fmt.Sprint("sender-", i))
				cid, err := c.StartConversation(ctx, fmt.Sprint("offline-", i))
				if err != nil {
					t.Fatal(err)
				}
				wg.Add(2)
				go func() {
					defer wg.Done()
					<-startLine
					for n := 0; ; n++ {
						res, err := c.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(text(fmt.Sprint("m", n)))})
						if err != nil {
							return // closed by the drain: not acked
						}
						mu.Lock()
						acks = append(acks, acked{cid, res.ID})
						mu.Unlock()
					}
				}()
				go func() {
					defer wg.Done()
					if _, err := c.NextOf(ctx, wire.CommandType_goaway); err == nil {
						goaway <- c.ClientID
					}
				}()
			}
			close(startLine)
			time.Sleep(500 * time.Millisecond) // load going

			start := time.Now()
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			// Readiness turns false before any socket is told to go.
			deadline := time.Now().Add(drainDelay)
			for status(t, p.root+"/readyz") != http.StatusServiceUnavailable {
				if time.Now().After(deadline) {
					t.Fatalf("/readyz not 503 within the drain delay")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if len(goaway) > 0 {
				t.Fatal("goaway before readiness turned false")
			}
			bound := drainDelay + drainTimeout + shutdown
			select {
			case <-p.done:
			case <-time.After(bound + 5*time.Second):
				t.Fatalf("leanhub still running %v after SIGTERM:\n%s", time.Since(start), p.out.String())
			}
			took := time.Since(start)
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("exit code %d after drain:\n%s", code, p.out.String())
			}
			wg.Wait()
			if len(goaway) != senders {
				t.Fatalf("%d of %d clients got goaway", len(goaway), senders)
			}
			t.Logf("drained and exited %v after SIGTERM (bound %v); %d messages acked", took.Round(time.Millisecond), bound, len(acks))
			if len(acks) == 0 {
				t.Fatal("no message was acked: the load did not run")
			}

			// Every acked message is in the store.
			st, err := store.Open(ctx, dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			byConv := map[string]map[string]bool{}
			for _, a := range acks {
				if byConv[a.conv] == nil {
					byConv[a.conv] = map[string]bool{}
				}
				byConv[a.conv][a.id] = true
			}
			for conv, ids := range byConv {
				for _, m := range allMessages(t, ctx, st, conv) {
					delete(ids, m.ID)
				}
				if len(ids) > 0 {
					t.Errorf("conversation %s: %d acked messages not in the store", conv, len(ids))
				}
			}
		})
	}
}

// allMessages pages through a conversation's history (a page is at most
// 1000 messages).
func allMessages(t *testing.T, ctx context.Context, st *store.SQL, conv string) []*realtime.Message {
	t.Helper()
	var all []*realtime.Message
	q := realtime.HistoryQuery{ConvID: conv, Direction: realtime.Newer, Limit: 1000}
	for {
		page, err := st.History(ctx, q)
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

func TestSecondSignalStopsAtOnce(t *testing.T) {
	ctx := ctxT(t, 60*time.Second)
	p := startProc(t, nil, "-db", filepath.Join(t.TempDir(), "x.db"), "-drain-delay", "30s")
	login(t, ctx, p, "any", "lingerer")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatal("a second SIGTERM did not stop leanhub at once")
	}
	if code := p.cmd.ProcessState.ExitCode(); code == 0 {
		t.Fatalf("exit 0 after a cut drain, want non-zero:\n%s", p.out.String())
	}
}

// natsServer starts a nats-server of the test's own on a free port (so
// the test can stop it) and returns its URL and a function that kills it.
func natsServer(t *testing.T) (string, func()) {
	t.Helper()
	bin := "/usr/sbin/nats-server"
	if p, err := exec.LookPath("nats-server"); err == nil {
		bin = p
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("nats-server not found: %v", err)
		}
		t.Skip("nats-server not installed (apt-get install nats-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nats-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "nats://" + addr, stop
}

func waitStatus(t *testing.T, u string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := status(t, u)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d, want %d within %v", u, got, want, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSeveralNodesShareABrokerAndReportItInReadiness: two leanhub
// processes on one PostgreSQL schema deliver each other's messages through
// the broker; with NATS, /readyz turns 503 while the broker is down.
func TestSeveralNodesShareABrokerAndReportItInReadiness(t *testing.T) {
	for _, broker := range []string{"nats", "postgres"} {
		t.Run(broker, func(t *testing.T) {
			dsn := backends(t)["postgres"](t)
			ctx := ctxT(t, 90*time.Second)
			arg := "postgres"
			var stopNATS func()
			if broker == "nats" {
				arg, stopNATS = natsServer(t)
			}
			env := []string{"LEANHUB_MASTER_KEY=shared-master-key"}
			a := startProc(t, env, "-db", dsn, "-broker", arg, "-node", "a", "-drain-delay", "0s")
			b := startProc(t, env, "-db", dsn, "-broker", arg, "-node", "b", "-drain-delay", "0s")
			waitStatus(t, a.root+"/readyz", 200, 20*time.Second)
			waitStatus(t, b.root+"/readyz", 200, 20*time.Second)

			tom := login(t, ctx, a, "any", "node-tom")
			jerry := login(t, ctx, b, "any", "node-jerry")
			cid, err := tom.StartConversation(ctx, "node-jerry")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tom.SendText(ctx, cid, text("across")); err != nil {
				t.Fatal(err)
			}
			m, err := jerry.NextMessage(ctx)
			if err != nil || !strings.Contains(m.Data, "across") {
				t.Fatalf("jerry on node b got %v, %v", m, err)
			}
			if got := scrape(t, b.root)["leanhub_broker_receive_lag_seconds_count"]; got < 1 {
				t.Errorf("node b counted %v broker receptions, want at least 1", got)
			}
			if broker == "nats" {
				if got := scrape(t, a.root)["leanhub_broker_published_events_total"]; got < 1 {
					t.Errorf("node a published %v events, want at least 1", got)
				}
				stopNATS()
				waitStatus(t, a.root+"/readyz", http.StatusServiceUnavailable, 10*time.Second)
				if s := status(t, a.root+"/healthz"); s != 200 {
					t.Errorf("/healthz = %d while only the broker is down", s)
				}
			}
			for _, p := range []*proc{a, b} {
				if code, _ := p.stop(t, 30*time.Second); code != 0 {
					t.Errorf("exit %d:\n%s", code, p.out.String())
				}
			}
		})
	}
}

func TestServesTLSAndAdminOnItsOwnAddress(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile)
	p := startProc(t, nil, "-db", filepath.Join(dir, "t.db"), "-tls-cert", certFile, "-tls-key", keyFile,
		"-admin-addr", "127.0.0.1:0", "-drain-delay", "0s")
	if !strings.HasPrefix(p.url, "https://") || p.admin == p.root {
		t.Fatalf("serving line: hub %s, admin %s", p.url, p.admin)
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	res, err := insecure.Get(p.url + "/v1/route?appId=x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "wss://") {
		t.Fatalf("router over TLS: %s %s", res.Status, body)
	}
	if s := status(t, p.admin+"/readyz"); s != 200 {
		t.Fatalf("admin /readyz = %d", s)
	}
	// The public port does not serve the admin endpoints.
	res, err = insecure.Get(p.root + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("/metrics on the public port: %s, want 404", res.Status)
	}
	if code, _ := p.stop(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.out.String())
	}
}

func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

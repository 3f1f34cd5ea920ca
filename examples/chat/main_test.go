package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/leanhub/realtime/internal/pgtest"
)

func TestRoutes(t *testing.T) {
	dist := t.TempDir()
	if err := os.WriteFile(filepath.Join(dist, sdkFile), []byte("window.AV = {};"), 0o644); err != nil {
		t.Fatal(err)
	}
	im := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hub saw "+r.URL.Path)
	})
	cfg := pageConfig{AppID: "app-1", AppKey: "key-1"}
	local := httptest.NewServer(newRouter(im, cfg, filepath.Join(dist, sdkFile)))
	defer local.Close()
	cdn := httptest.NewServer(newRouter(im, cfg, ""))
	defer cdn.Close()

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		name     string
		base     string
		path     string
		status   int
		contains string
		location string
	}{
		{"health", local.URL, "/healthz", 200, "ok", ""},
		{"config", local.URL, "/config.json", 200, `{"appId":"app-1","appKey":"key-1"}`, ""},
		{"page", local.URL, "/", 200, `<script src="sdk/im-browser.min.js">`, ""},
		{"script", local.URL, "/app.js", 200, "createIMClient", ""},
		{"style", local.URL, "/style.css", 200, ".msg", ""},
		{"hub mounted", local.URL, "/im/v1/route", 200, "hub saw /im/v1/route", ""},
		{"local sdk", local.URL, "/sdk/im-browser.min.js", 200, "window.AV", ""},
		{"local sdk map missing", local.URL, "/sdk/im-browser.min.js.map", 404, "", ""},
		{"other sdk file", local.URL, "/sdk/im-node.js", 404, "", ""},
		{"cdn sdk", cdn.URL, "/sdk/im-browser.min.js", 302, "", sdkCDN + sdkFile},
		{"unknown page", local.URL, "/nope.html", 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := noRedirect.Get(tt.base + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("GET %s: status %d, want %d (%s)", tt.path, res.StatusCode, tt.status, body)
			}
			if !strings.Contains(string(body), tt.contains) {
				t.Errorf("GET %s: body %q does not contain %q", tt.path, body, tt.contains)
			}
			if got := res.Header.Get("Location"); got != tt.location {
				t.Errorf("GET %s: Location %q, want %q", tt.path, got, tt.location)
			}
		})
	}
}

func TestFindSDK(t *testing.T) {
	pkg := t.TempDir()
	if err := os.MkdirAll(filepath.Join(pkg, "dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(pkg, "dist", sdkFile)
	if err := os.WriteFile(bundle, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{pkg, filepath.Join(pkg, "dist")} {
		got, err := findSDK(dir)
		if err != nil || got != bundle {
			t.Errorf("findSDK(%q) = %q, %v; want %q", dir, got, err, bundle)
		}
	}
	if _, err := findSDK(t.TempDir()); err == nil {
		t.Error("findSDK(empty dir) gave no error; an explicit -sdk-dir must hold the bundle")
	}
}

func TestPageURL(t *testing.T) {
	tests := []struct {
		addr string
		want string
	}{
		{"127.0.0.1:8080", "http://127.0.0.1:8080/"},
		{"0.0.0.0:80", "http://localhost:80/"},
		{"[::]:9000", "http://localhost:9000/"},
		{"[::1]:9000", "http://[::1]:9000/"},
	}
	for _, tt := range tests {
		addr, err := net.ResolveTCPAddr("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := pageURL(addr); got != tt.want {
			t.Errorf("pageURL(%s) = %s, want %s", tt.addr, got, tt.want)
		}
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != "127.0.0.1:8080" || o.db != "chat.db" || o.keywords != "" {
		t.Errorf("defaults: %+v", o)
	}
	if _, err := parseFlags([]string{"extra"}, io.Discard); err == nil {
		t.Error("a stray argument was accepted")
	}
}

// TestRun starts the whole app on a free port, checks the printed URL
// works, and stops it the way a signal would (by cancelling its context):
// on SQLite, and on PostgreSQL when REALTIME_TEST_POSTGRES_DSN is set.
func TestRun(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testRun(t, filepath.Join(t.TempDir(), "chat.db")) })
	t.Run("postgres", func(t *testing.T) {
		dsn := os.Getenv("REALTIME_TEST_POSTGRES_DSN")
		if dsn == "" {
			t.Skip("REALTIME_TEST_POSTGRES_DSN is not set")
		}
		testRun(t, dsn)
	})
}

func testRun(t *testing.T, db string) {
	dir := t.TempDir()
	words := filepath.Join(dir, "words.txt")
	if err := os.WriteFile(words, []byte("badword\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stdout, w := io.Pipe()
	done := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-db", db, "-keywords", words}, w, t.Output())
		w.Close()
	}()
	// run logs to t.Output: it must be over before the test ends, also when
	// the test fails half-way.
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(shutdownTimeout + 5*time.Second):
		}
	})

	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		io.Copy(io.Discard, stdout)
	}()
	var url string
	select {
	case l := <-line:
		url = regexp.MustCompile(`http://\S+`).FindString(l)
		if url == "" || !strings.HasPrefix(l, "chat: open ") {
			t.Fatalf("first line %q has no URL to open", l)
		}
	case err := <-done:
		t.Fatalf("run returned before printing the URL: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no URL printed within 10s")
	}

	res, err := http.Get(url + "config.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg pageConfig
	err = json.NewDecoder(res.Body).Decode(&cfg)
	res.Body.Close()
	if err != nil || cfg.AppID != "chat-example" {
		t.Fatalf("config.json: %+v, %v", cfg, err)
	}
	res, err = http.Get(url + "im/v1/route?appId=chat-example&secure=true")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"server"`) {
		t.Fatalf("router: %d %s", res.StatusCode, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
}

func TestMain(m *testing.M) {
	cleanup := pgtest.IsolateProcess("chattest")
	code := m.Run()
	cleanup()
	os.Exit(code)
}

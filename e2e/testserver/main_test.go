package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/leanhub/realtime/hub"
)

// start runs the server in-process on a fresh SQLite file and returns its
// base URL; the server stops (and must stop cleanly) when the test ends.
func start(t *testing.T, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var logs bytes.Buffer
	args := append([]string{"-addr", "127.0.0.1:0", "-db", filepath.Join(t.TempDir(), "t.db"), "-app-id", "app-1"}, extra...)
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw, &logs)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v\n%s", err, logs.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("server did not stop")
		}
	})

	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := regexp.MustCompile(`http://\S+`).FindString(sc.Text()); m != "" {
				urls <- strings.TrimRight(m, "/")
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case u := <-urls:
		return u
	case err := <-done:
		t.Fatalf("server exited early: %v\n%s", err, logs.String())
	case <-time.After(15 * time.Second):
		t.Fatal("no URL printed")
	}
	return ""
}

func TestServes(t *testing.T) {
	base := start(t, "-master-key", "mk-1")

	res, err := http.Get(base + "/im/v1/route?appId=app-1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"server":"ws://`) {
		t.Fatalf("GET /im/v1/route: %d %s", res.StatusCode, body)
	}

	cases := []struct {
		req  signRequest
		want func(ts int64, nonce string) string
	}{
		{signRequest{ClientID: "Tom"}, func(ts int64, n string) string {
			return hub.LoginSignatureMessage("app-1", "Tom", ts, n)
		}},
		{signRequest{ClientID: "Tom", Members: []string{"Tom", "Jerry"}, Action: "create"}, func(ts int64, n string) string {
			return "app-1:Tom:Jerry:Tom:" + itoa(ts) + ":" + n
		}},
		{signRequest{ClientID: "Tom", ConvID: "c1", Members: []string{"Kate"}, Action: "invite"}, func(ts int64, n string) string {
			return "app-1:Tom:c1:Kate:" + itoa(ts) + ":" + n + ":invite"
		}},
	}
	for _, c := range cases {
		b, _ := json.Marshal(c.req)
		res, err := http.Post(base+"/sign", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var got signResponse
		err = json.NewDecoder(res.Body).Decode(&got)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("POST /sign %s: %d %v", b, res.StatusCode, err)
		}
		if got.Nonce == "" || time.Since(time.UnixMilli(got.Timestamp)).Abs() > time.Minute {
			t.Errorf("POST /sign %s: nonce %q timestamp %d", b, got.Nonce, got.Timestamp)
		}
		if want := hub.Sign("mk-1", c.want(got.Timestamp, got.Nonce)); got.Signature != want {
			t.Errorf("POST /sign %s: signature %s, want %s", b, got.Signature, want)
		}
	}

	res, err = http.Post(base+"/sign", "application/json", strings.NewReader(`{"clientId":"Tom","action":"nope"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Errorf("unknown action: status %d, want 400", res.StatusCode)
	}
}

func TestSignWithoutMasterKey(t *testing.T) {
	base := start(t)
	res, err := http.Post(base+"/sign", "application/json", strings.NewReader(`{"clientId":"Tom"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Errorf("status %d, want 400", res.StatusCode)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

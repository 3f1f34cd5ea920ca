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
		{signRequest{ClientID: "Tom", ConvID: "c1", Members: []string{"Kate", "Jerry"}, Action: "conversation-block-clients"}, func(ts int64, n string) string {
			return "app-1:Tom:c1:Jerry:Kate:" + itoa(ts) + ":" + n + ":conversation-block-clients"
		}},
		{signRequest{ClientID: "Tom", ConvID: "c1", Members: []string{"Kate"}, Action: "conversation-unblock-clients"}, func(ts int64, n string) string {
			return "app-1:Tom:c1:Kate:" + itoa(ts) + ":" + n + ":conversation-unblock-clients"
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

func TestRequireFlag(t *testing.T) {
	cases := []struct {
		args                           []string
		login, conversation, blacklist bool
	}{
		{[]string{"-app-id", "a"}, false, false, false},
		{[]string{"-app-id", "a", "-master-key", "k"}, true, true, false},
		{[]string{"-app-id", "a", "-master-key", "k", "-require", "blacklist"}, false, false, true},
		{[]string{"-app-id", "a", "-master-key", "k", "-require", "login, blacklist"}, true, false, true},
		{[]string{"-app-id", "a", "-master-key", "k", "-require", ""}, false, false, false},
	}
	for _, c := range cases {
		o, err := parseFlags(c.args, io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if o.requireLogin != c.login || o.requireConversation != c.conversation || o.requireBlacklist != c.blacklist {
			t.Errorf("%q: login %v conversation %v blacklist %v, want %v %v %v", c.args,
				o.requireLogin, o.requireConversation, o.requireBlacklist, c.login, c.conversation, c.blacklist)
		}
	}
	if o, err := parseFlags([]string{"-private-groups"}, io.Discard); err != nil || !o.privateGroups {
		t.Errorf("-private-groups: %+v %v", o, err)
	}
	if _, err := parseFlags([]string{"-app-id", "a", "-master-key", "k", "-require", "nope"}, io.Discard); err == nil {
		t.Error("-require nope: no error")
	}
}

// post sends JSON to base+path and decodes the JSON answer into out.
func post(t *testing.T, url string, header http.Header, body any, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("POST %s: %d, not JSON: %s", url, res.StatusCode, raw)
		}
	}
	return res.StatusCode
}

// The hub's POST /im/1.1/rtm/sign (createIMClient(AV.User)) signs logins for
// the users the test UserResolver knows: tokens "valid-<objectId>".
func TestUserSign(t *testing.T) {
	base := start(t, "-master-key", "mk-1", "-require", "login")
	h := http.Header{"X-Lc-Id": {"app-1"}, "X-Lc-Key": {"key"}}
	var got struct {
		Signature string `json:"signature"`
		Timestamp int64  `json:"timestamp"`
		Nonce     string `json:"nonce"`
		ClientID  string `json:"client_id"`
	}
	if st := post(t, base+"/im/1.1/rtm/sign", h, map[string]string{"session_token": "valid-u123"}, &got); st != 200 {
		t.Fatalf("valid token: status %d", st)
	}
	want := hub.Sign("mk-1", hub.LoginSignatureMessage("app-1", "u123", got.Timestamp, got.Nonce))
	if got.ClientID != "u123" || got.Signature != want {
		t.Errorf("valid token: %+v, want client u123 and signature %s", got, want)
	}
	var refused struct {
		Code  int    `json:"code"`
		Error string `json:"error"`
	}
	if st := post(t, base+"/im/1.1/rtm/sign", h, map[string]string{"session_token": "bogus"}, &refused); st != 401 || refused.Code != 4102 {
		t.Errorf("bad token: status %d body %+v, want 401 with code 4102", st, refused)
	}
}

// The service endpoints create a service conversation and send to it
// through the Go API.
func TestServiceEndpoints(t *testing.T) {
	base := start(t)
	var conv struct {
		ID        string `json:"id"`
		CreatedAt string `json:"createdAt"`
	}
	if st := post(t, base+"/service/conversations", nil, map[string]any{"name": "news", "attrs": map[string]any{"topic": "go"}}, &conv); st != 200 || len(conv.ID) != 24 || conv.CreatedAt == "" {
		t.Fatalf("create: status %d %+v", st, conv)
	}
	var sent struct {
		ID        string `json:"id"`
		Timestamp int64  `json:"timestamp"`
	}
	if st := post(t, base+"/service/messages", nil, map[string]any{"convId": conv.ID, "text": "hello all"}, &sent); st != 200 || sent.ID == "" || sent.Timestamp == 0 {
		t.Fatalf("broadcast: status %d %+v", st, sent)
	}
	// To subscribers only: nobody subscribed, so it reaches nobody, but it
	// is a valid send.
	if st := post(t, base+"/service/messages", nil, map[string]any{"convId": conv.ID, "text": "hello you", "to": []string{"Tom"}}, &sent); st != 200 || sent.ID == "" {
		t.Fatalf("to one: status %d %+v", st, sent)
	}
	var refused struct {
		Code int `json:"code"`
	}
	if st := post(t, base+"/service/messages", nil, map[string]any{"convId": "000000000000000000000000", "text": "x"}, &refused); st != 400 || refused.Code == 0 {
		t.Errorf("missing conversation: status %d %+v, want 400 with a code", st, refused)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

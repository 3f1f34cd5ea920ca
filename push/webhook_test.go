package push

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/leanhub/realtime"
)

func TestWebhook(t *testing.T) {
	secret := []byte("s3cret")
	type answer struct {
		status int
		body   string
		header map[string]string
	}
	var reply answer
	var got *WebhookEvent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := VerifyWebhook(secret, r)
		if err != nil {
			t.Errorf("VerifyWebhook: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if b, _ := io.ReadAll(r.Body); !json.Valid(b) {
			t.Error("VerifyWebhook did not restore the body")
		}
		got = ev
		for k, v := range reply.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(reply.status)
		io.WriteString(w, reply.body)
	}))
	defer srv.Close()
	wh := &Webhook{URL: srv.URL, Secret: secret, Client: srv.Client()}
	n := &realtime.Notification{
		ID:     "n1",
		Device: realtime.Device{ClientID: "bob", Platform: realtime.PlatformWeb, Token: "tok", Badge: 3},
		ConvID: "c1", From: "tom", MsgID: "m1",
		Payload:   json.RawMessage(`{"alert":"hi","badge":3}`),
		Profile:   "dev",
		CreatedAt: time.UnixMilli(1700000000123),
		Attempts:  2,
	}
	for _, tc := range []struct {
		name    string
		reply   answer
		outcome *Outcome // nil: success
		after   time.Duration
	}{
		{name: "200", reply: answer{status: 200}},
		{name: "204", reply: answer{status: 204}},
		{name: "410", reply: answer{status: 410}, outcome: ptr(BadToken)},
		{name: "bad_token JSON", reply: answer{status: 400, body: `{"error":"bad_token"}`}, outcome: ptr(BadToken)},
		{name: "bad_token JSON on 200", reply: answer{status: 200, body: `{"error":"bad_token"}`}, outcome: ptr(BadToken)},
		{name: "500", reply: answer{status: 500}, outcome: ptr(Retryable)},
		{name: "429 Retry-After", reply: answer{status: 429, header: map[string]string{"Retry-After": "120"}}, outcome: ptr(Retryable), after: 2 * time.Minute},
		{name: "400", reply: answer{status: 400, body: `{"error":"bad_payload"}`}, outcome: ptr(Permanent)},
		{name: "404", reply: answer{status: 404}, outcome: ptr(Permanent)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply, got = tc.reply, nil
			err := wh.Push(t.Context(), n)
			if got == nil {
				t.Fatal("request not received")
			}
			if got.ID != "n1" || got.Device.Token != "tok" || got.Device.Platform != "web" || got.Device.Badge != 3 ||
				got.ConvID != "c1" || got.From != "tom" || got.MsgID != "m1" || got.Profile != "dev" ||
				got.Created != 1700000000123 || got.Attempts != 2 || string(got.Payload) != `{"alert":"hi","badge":3}` {
				t.Errorf("event %+v", got)
			}
			if tc.outcome == nil {
				if err != nil {
					t.Fatalf("Push = %v", err)
				}
				return
			}
			var pe *ProviderError
			if !errors.As(err, &pe) || pe.Outcome != *tc.outcome || pe.RetryAfter != tc.after {
				t.Fatalf("Push = %#v, want outcome %v after %v", err, *tc.outcome, tc.after)
			}
			if errors.Is(err, realtime.ErrBadDeviceToken) != (*tc.outcome == BadToken) ||
				errors.Is(err, ErrPermanent) != (*tc.outcome == Permanent) {
				t.Errorf("errors.Is mismatch for %v", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestVerifyWebhookRefuses(t *testing.T) {
	secret := []byte("s3cret")
	var last *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		last = r.Clone(r.Context())
		last.Body = io.NopCloser(strings.NewReader(string(b)))
	}))
	defer srv.Close()
	send := func(now time.Time) *http.Request {
		wh := &Webhook{URL: srv.URL, Secret: secret, Client: srv.Client(), Now: func() time.Time { return now }}
		if err := wh.Push(t.Context(), &realtime.Notification{ID: "x", Payload: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		return last
	}
	body := func(r *http.Request) string { b, _ := io.ReadAll(r.Body); return string(b) }

	r := send(time.Now())
	if _, err := VerifyWebhook([]byte("other"), r); !errors.Is(err, ErrWebhookSignature) {
		t.Errorf("wrong secret: %v", err)
	}
	r = send(time.Now())
	b := body(r)
	r.Body = io.NopCloser(strings.NewReader(strings.Replace(b, `"x"`, `"y"`, 1)))
	if _, err := VerifyWebhook(secret, r); !errors.Is(err, ErrWebhookSignature) {
		t.Errorf("tampered body: %v", err)
	}
	r = send(time.Now())
	r.Header.Set(TimestampHeader, "1")
	if _, err := VerifyWebhook(secret, r); !errors.Is(err, ErrWebhookSignature) {
		t.Errorf("tampered timestamp header: %v", err)
	}
	r = send(time.Now().Add(-time.Hour))
	if _, err := VerifyWebhook(secret, r); !errors.Is(err, ErrWebhookSignature) {
		t.Errorf("replayed request: %v", err)
	}
	r = send(time.Now())
	r.Header.Del(SignatureHeader)
	if _, err := VerifyWebhook(secret, r); !errors.Is(err, ErrWebhookSignature) {
		t.Errorf("unsigned request: %v", err)
	}
	r = send(time.Now())
	if _, err := VerifyWebhook(secret, r); err != nil {
		t.Errorf("good request: %v", err)
	}
}

func TestMultiAndLog(t *testing.T) {
	var routed realtime.Platform
	rec := func(p realtime.Platform) realtime.Pusher {
		return realtime.PusherFunc(func(ctx context.Context, n *realtime.Notification) error { routed = p; return nil })
	}
	m := Multi{realtime.PlatformIOS: rec("ios"), "": rec("fallback")}
	for platform, want := range map[realtime.Platform]realtime.Platform{"ios": "ios", "android": "fallback"} {
		if err := m.Push(t.Context(), &realtime.Notification{Device: realtime.Device{Platform: platform}}); err != nil || routed != want {
			t.Errorf("%s routed to %s (%v)", platform, routed, err)
		}
	}
	err := Multi{}.Push(t.Context(), &realtime.Notification{Device: realtime.Device{Platform: "web"}})
	if !errors.Is(err, ErrPermanent) {
		t.Errorf("unrouted platform: %v", err)
	}
	var buf strings.Builder
	l := Log{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	if err := l.Push(t.Context(), &realtime.Notification{ID: "n1", ConvID: "c1", Device: realtime.Device{ClientID: "bob"}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "client=bob") || !strings.Contains(buf.String(), "conv=c1") {
		t.Errorf("log line %q", buf.String())
	}
}

// A token the receiver refuses is unregistered through the whole chain:
// Webhook answer 410 -> ProviderError -> Queue -> DeviceStore.
func TestQueueWithWebhookUnregisters(t *testing.T) {
	secret := []byte("k")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := VerifyWebhook(secret, r)
		if err != nil {
			t.Error(err)
		}
		if ev != nil && ev.Device.Token == "dead" {
			w.WriteHeader(http.StatusGone)
		}
	}))
	defer srv.Close()
	store := newMemStore()
	for _, tok := range []string{"dead", "alive"} {
		store.RegisterDevice(t.Context(), realtime.Device{ClientID: "bob", Platform: realtime.PlatformWeb, Token: tok})
	}
	q, clock := startQueue(t, store, &Webhook{URL: srv.URL, Secret: secret, Client: srv.Client()}, QueueOptions{})
	devices, _ := store.Devices(t.Context(), []string{"bob"})
	r, _ := Render(RenderInput{PushData: []byte(`{"alert":"hi"}`)})
	ns, _ := r.Notifications(t.Context(), store, devices, Origin{MsgID: "m"}, clock.Now())
	q.Enqueue(t.Context(), ns...)
	eventually(t, "delivery", func() bool { return store.pending() == 0 })
	store.mu.Lock()
	defer store.mu.Unlock()
	if _, ok := store.devices["web/dead"]; ok || len(store.devices) != 1 {
		t.Errorf("devices %v; want only the alive one", store.devices)
	}
}

package push

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leanhub/realtime"
)

// fakeAPNs speaks enough of APNs' HTTP/2 protocol to test the pusher: it
// checks the provider token against the teams' public keys and answers
// from a script.
type fakeAPNs struct {
	t    *testing.T
	srv  *httptest.Server
	keys map[string]*ecdsa.PublicKey // key id -> public key

	mu       sync.Mutex
	requests []apnsRequest
	replies  []apnsReply // consumed in order; empty means 200
}

type apnsRequest struct {
	proto  int
	path   string
	header http.Header
	body   map[string]any
	iss    string
	kid    string
	iat    int64
	jwt    string
}

type apnsReply struct {
	status int
	reason string
}

func newFakeAPNs(t *testing.T, keys map[string]*ecdsa.PublicKey) *fakeAPNs {
	f := &fakeAPNs{t: t, keys: keys}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.EnableHTTP2 = true
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPNs) serve(w http.ResponseWriter, r *http.Request) {
	req := apnsRequest{proto: r.ProtoMajor, path: r.URL.Path, header: r.Header.Clone()}
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &req.body); err != nil {
		f.t.Errorf("body %q: %v", b, err)
	}
	jwt, ok := strings.CutPrefix(r.Header.Get("authorization"), "bearer ")
	if !ok {
		f.t.Errorf("authorization %q", r.Header.Get("authorization"))
	}
	req.jwt = jwt
	var header, claims map[string]any
	if pub := verifyJWT(f.t, jwt, &header, &claims, func(kid string) any { return f.keys[kid] }); pub == nil {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"reason":"InvalidProviderToken"}`)
		return
	}
	// Apple's provider token: alg and kid (typ is allowed), iss and iat.
	if header["alg"] != "ES256" || len(header) > 3 || (len(header) == 3 && header["typ"] != "JWT") {
		f.t.Errorf("JWT header %v", header)
	}
	iat, isNumber := claims["iat"].(float64)
	req.iss, _ = claims["iss"].(string)
	if len(claims) != 2 || req.iss == "" || !isNumber || iat != float64(int64(iat)) {
		f.t.Errorf("JWT claims %v, want iss and an integer iat only", claims)
	}
	req.iat = int64(iat)
	req.kid, _ = header["kid"].(string)
	f.mu.Lock()
	f.requests = append(f.requests, req)
	reply := apnsReply{status: 200}
	if len(f.replies) > 0 {
		reply, f.replies = f.replies[0], f.replies[1:]
	}
	f.mu.Unlock()
	if reply.status != 200 {
		w.Header().Set("content-type", "application/json")
		w.WriteHeader(reply.status)
		json.NewEncoder(w).Encode(map[string]string{"reason": reply.reason})
		return
	}
	w.Header().Set("apns-id", r.Header.Get("apns-id"))
}

func (f *fakeAPNs) reply(rs ...apnsReply) {
	f.mu.Lock()
	f.replies = append(f.replies, rs...)
	f.mu.Unlock()
}

func (f *fakeAPNs) take() []apnsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := f.requests
	f.requests = nil
	return rs
}

// verifyJWT checks a JWT's signature with the key keyFor returns for its
// kid (an *ecdsa.PublicKey for ES256, an *rsa.PublicKey for RS256) and
// decodes its header and claims. It returns the key, or nil on failure.
func verifyJWT(t *testing.T, jwt string, header, claims any, keyFor func(kid string) any) any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Errorf("JWT %q has %d parts", jwt, len(parts))
		return nil
	}
	dec := func(i int, v any) []byte {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Errorf("JWT part %d: %v", i, err)
		}
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Errorf("JWT part %d: %v", i, err)
			}
		}
		return b
	}
	var h struct{ Alg, Kid, Typ string }
	dec(0, &h)
	dec(0, header)
	dec(1, claims)
	sig := dec(2, nil)
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch pub := keyFor(h.Kid).(type) {
	case *ecdsa.PublicKey:
		if h.Alg != "ES256" || len(sig) != 64 || !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Errorf("ES256 signature does not verify (kid %q)", h.Kid)
			return nil
		}
		return pub
	case *rsa.PublicKey:
		if h.Alg != "RS256" || rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) != nil {
			t.Errorf("RS256 signature does not verify (kid %q)", h.Kid)
			return nil
		}
		return pub
	default:
		t.Errorf("no key for kid %q", h.Kid)
		return nil
	}
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type apnsFixture struct {
	prod, sandbox *fakeAPNs
	apns          *APNs
	clock         *fakeClock
}

func newAPNsFixture(t *testing.T) *apnsFixture {
	k1, k2 := newECKey(t), newECKey(t)
	pubs := map[string]*ecdsa.PublicKey{"KEY1": &k1.PublicKey, "KEY2": &k2.PublicKey}
	f := &apnsFixture{prod: newFakeAPNs(t, pubs), sandbox: newFakeAPNs(t, pubs),
		clock: &fakeClock{t: time.Unix(1700000000, 0)}}
	var err error
	f.apns, err = NewAPNs(APNsConfig{
		Keys:          map[string]APNsKey{"TEAM1": {KeyID: "KEY1", Key: k1}, "TEAM2": {KeyID: "KEY2", Key: k2}},
		DefaultTeamID: "TEAM1",
		BundleID:      "com.example.app",
		Host:          f.prod.srv.URL,
		SandboxHost:   f.sandbox.srv.URL,
		Client:        f.prod.srv.Client(), // trusts both test certificates: httptest shares one
		Now:           f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func iosNote() *realtime.Notification {
	return &realtime.Notification{
		ID:        NotificationID("m1", realtime.Device{Token: "abc"}),
		Device:    realtime.Device{ClientID: "bob", Platform: realtime.PlatformIOS, Token: "abc"},
		ConvID:    "c1",
		Payload:   json.RawMessage(`{"alert":"hi","badge":3,"sound":"ding.caf","category":"msg","custom":"x","nested":{"a":1}}`),
		CreatedAt: time.Unix(1700000000, 0),
	}
}

func TestAPNsPush(t *testing.T) {
	f := newAPNsFixture(t)
	n := iosNote()
	if err := f.apns.Push(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	reqs := f.prod.take()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.proto != 2 {
		t.Errorf("HTTP/%d, want HTTP/2", r.proto)
	}
	if r.path != "/3/device/abc" || r.iss != "TEAM1" || r.kid != "KEY1" || r.iat != 1700000000 {
		t.Errorf("path %s iss %s kid %s iat %d", r.path, r.iss, r.kid, r.iat)
	}
	for h, want := range map[string]string{
		"apns-topic":      "com.example.app",
		"apns-push-type":  "alert",
		"apns-priority":   "10",
		"apns-expiration": "1700604800", // created + 7 days
		"apns-id":         n.ID,
		"content-type":    "application/json",
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	body, _ := json.Marshal(r.body)
	if want := `{"aps":{"alert":"hi","badge":3,"category":"msg","sound":"ding.caf"},"custom":"x","nested":{"a":1}}`; string(body) != want {
		t.Errorf("body %s\nwant %s", body, want)
	}

	// Device topic, sandbox profile and the second team's key.
	n.Device.Topic = "com.example.other"
	n.Profile = "dev"
	n.TeamID = "TEAM2"
	if err := f.apns.Push(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	if len(f.prod.take()) != 0 {
		t.Error("dev push reached production")
	}
	reqs = f.sandbox.take()
	if len(reqs) != 1 || reqs[0].header.Get("apns-topic") != "com.example.other" || reqs[0].iss != "TEAM2" || reqs[0].kid != "KEY2" {
		t.Fatalf("sandbox requests %+v", reqs)
	}
	n.Profile, n.Device.Profile = "", "dev"
	f.apns.Push(t.Context(), n)
	if len(f.sandbox.take()) != 1 {
		t.Error("device profile dev did not select the sandbox")
	}

	n.TeamID = "NOPE"
	if err := f.apns.Push(t.Context(), n); !errors.Is(err, ErrPermanent) {
		t.Errorf("unknown team: %v", err)
	}
}

func TestAPNsTokenCache(t *testing.T) {
	f := newAPNsFixture(t)
	n := iosNote()
	f.apns.Push(t.Context(), n)
	f.clock.Advance(49 * time.Minute)
	f.apns.Push(t.Context(), n)
	f.clock.Advance(2 * time.Minute)
	f.apns.Push(t.Context(), n)
	reqs := f.prod.take()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	if reqs[0].jwt != reqs[1].jwt {
		t.Error("token not reused within 50 minutes")
	}
	if reqs[2].jwt == reqs[1].jwt || reqs[2].iat != 1700000000+51*60 {
		t.Errorf("token not refreshed after 50 minutes (iat %d)", reqs[2].iat)
	}
}

func TestAPNsErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replies  []apnsReply
		outcome  *Outcome
		requests int
	}{
		{"410 Unregistered", []apnsReply{{410, "Unregistered"}}, ptr(BadToken), 1},
		{"400 BadDeviceToken", []apnsReply{{400, "BadDeviceToken"}}, ptr(BadToken), 1},
		{"400 DeviceTokenNotForTopic", []apnsReply{{400, "DeviceTokenNotForTopic"}}, ptr(BadToken), 1},
		{"400 BadTopic", []apnsReply{{400, "BadTopic"}}, ptr(Permanent), 1},
		{"413 PayloadTooLarge", []apnsReply{{413, "PayloadTooLarge"}}, ptr(Permanent), 1},
		{"429", []apnsReply{{429, "TooManyRequests"}}, ptr(Retryable), 1},
		{"500", []apnsReply{{500, "InternalServerError"}}, ptr(Retryable), 1},
		{"503", []apnsReply{{503, "ServiceUnavailable"}}, ptr(Retryable), 1},
		{"expired token refreshed", []apnsReply{{403, "ExpiredProviderToken"}}, nil, 2},
		{"expired twice", []apnsReply{{403, "ExpiredProviderToken"}, {403, "ExpiredProviderToken"}}, ptr(Retryable), 2},
		{"403 other", []apnsReply{{403, "MissingProviderToken"}}, ptr(Retryable), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newAPNsFixture(t)
			f.prod.reply(tc.replies...)
			err := f.apns.Push(t.Context(), iosNote())
			reqs := f.prod.take()
			if len(reqs) != tc.requests {
				t.Fatalf("%d requests, want %d", len(reqs), tc.requests)
			}
			if tc.requests == 2 && reqs[0].jwt == reqs[1].jwt {
				t.Error("expired token was not replaced")
			}
			if tc.outcome == nil {
				if err != nil {
					t.Fatalf("Push = %v", err)
				}
				return
			}
			var pe *ProviderError
			if !errors.As(err, &pe) || pe.Outcome != *tc.outcome {
				t.Fatalf("Push = %v, want outcome %v", err, *tc.outcome)
			}
			if errors.Is(err, realtime.ErrBadDeviceToken) != (*tc.outcome == BadToken) {
				t.Errorf("errors.Is(ErrBadDeviceToken) wrong for %v", err)
			}
		})
	}
}

func TestAPNsBody(t *testing.T) {
	for _, tc := range []struct{ payload, body, pushType string }{
		{`{"alert":"hi","title":"Tom"}`, `{"aps":{"alert":{"body":"hi","title":"Tom"}}}`, "alert"},
		{`{"alert":{"title":"T","body":"B"},"title":"kept"}`, `{"aps":{"alert":{"body":"B","title":"T"}},"title":"kept"}`, "alert"},
		{`{"alert":"hi","badge":"Increment"}`, `{"aps":{"alert":"hi"}}`, "alert"},
		{`{"content-available":1,"k":"v"}`, `{"aps":{"content-available":1},"k":"v"}`, "background"},
		{`{"mutable-content":1,"alert":"x","thread-id":"t"}`, `{"aps":{"alert":"x","mutable-content":1,"thread-id":"t"}}`, "alert"},
		{`{"aps":{"alert":"raw"},"k":1}`, `{"aps":{"alert":"raw"},"k":1}`, "alert"},
		{``, `{"aps":{}}`, "background"},
	} {
		body, pushType, err := apnsBody(json.RawMessage(tc.payload))
		if err != nil || string(body) != tc.body || pushType != tc.pushType {
			t.Errorf("apnsBody(%s) = %s %s %v; want %s %s", tc.payload, body, pushType, err, tc.body, tc.pushType)
		}
	}
}

func TestParseAPNsKey(t *testing.T) {
	k := newECKey(t)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	path := filepath.Join(t.TempDir(), "AuthKey_KEY1.p8")
	os.WriteFile(path, p8, 0o600)
	got, err := LoadAPNsKey(path)
	if err != nil || !got.Equal(k) {
		t.Fatalf("LoadAPNsKey = %v, %v", got, err)
	}
	sec1, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseAPNsKey(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})); err != nil || !got.Equal(k) {
		t.Errorf("ParseAPNsKey(SEC 1) = %v, %v", got, err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ = x509.MarshalPKCS8PrivateKey(p384)
	if _, err := ParseAPNsKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err == nil {
		t.Error("P-384 key accepted")
	}
	if _, err := LoadAPNsKey(filepath.Join(t.TempDir(), "missing.p8")); err == nil {
		t.Error("LoadAPNsKey of a missing file succeeded")
	}
	rk, _ := rsa.GenerateKey(rand.Reader, 1024)
	der, _ = x509.MarshalPKCS8PrivateKey(rk)
	if _, err := ParseAPNsKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err == nil {
		t.Error("RSA key accepted")
	}
	if _, err := ParseAPNsKey([]byte("junk")); err == nil {
		t.Error("junk accepted")
	}
	if _, err := NewAPNs(APNsConfig{}); err == nil {
		t.Error("NewAPNs without keys succeeded")
	}
	if _, err := NewAPNs(APNsConfig{Keys: map[string]APNsKey{"A": {KeyID: "K", Key: k}, "B": {KeyID: "K2", Key: k}}, DefaultTeamID: "C"}); err == nil {
		t.Error("DefaultTeamID without key accepted")
	}
}

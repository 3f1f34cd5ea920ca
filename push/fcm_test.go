package push

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leanhub/realtime"
)

// fakeFCM is a Google OAuth token endpoint and an FCM v1 send endpoint.
type fakeFCM struct {
	t   *testing.T
	srv *httptest.Server
	pub *rsa.PublicKey

	mu        sync.Mutex
	issued    []string         // access tokens handed out
	valid     map[string]bool  // tokens the send endpoint accepts
	sends     []map[string]any // decoded send bodies
	replies   []fcmReply       // consumed in order; empty means 200
	tokenUp   bool             // token endpoint answers (else 500)
	expiresIn int              // seconds a new access token lasts
	tokenHold chan struct{}    // when set, the token endpoint waits for it to close
}

type fcmReply struct {
	status int
	body   string
	header map[string]string
}

func newFakeFCM(t *testing.T, pub *rsa.PublicKey) *fakeFCM {
	f := &fakeFCM{t: t, pub: pub, valid: map[string]bool{}, tokenUp: true, expiresIn: 3599}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("POST /v1/projects/proj-1/messages:send", f.send)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeFCM) token(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	up, hold := f.tokenUp, f.tokenHold
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if !up {
		http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
		return
	}
	if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		f.t.Errorf("token content type %q", r.Header.Get("Content-Type"))
	}
	if g := r.PostFormValue("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		f.t.Errorf("grant_type %q", g)
	}
	var header struct{ Kid, Typ string }
	var claims struct {
		Iss, Scope, Aud string
		Iat, Exp        int64
	}
	if verifyJWT(f.t, r.PostFormValue("assertion"), &header, &claims, func(kid string) any {
		if kid != "kid-1" {
			return nil
		}
		return f.pub
	}) == nil {
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
		return
	}
	// x/oauth2 dates the assertion by the system clock, 10 s early for
	// skew, valid for an hour.
	now := time.Now().Unix()
	if claims.Iss != "pusher@proj-1.iam.gserviceaccount.com" || claims.Scope != fcmScope ||
		claims.Aud != f.srv.URL+"/token" || claims.Iat < now-60 || claims.Iat > now ||
		claims.Exp != claims.Iat+3600 || header.Typ != "JWT" {
		f.t.Errorf("assertion header %+v claims %+v", header, claims)
	}
	f.mu.Lock()
	tok := fmt.Sprintf("access-%d", len(f.issued)+1)
	f.issued = append(f.issued, tok)
	f.valid[tok] = true
	expiresIn := f.expiresIn
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"expires_in":%d,"token_type":"Bearer"}`, tok, expiresIn)
}

func (f *fakeFCM) send(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	defer f.mu.Unlock()
	var body map[string]any
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		f.t.Errorf("send body %q: %v", b, err)
	}
	f.sends = append(f.sends, body)
	if !f.valid[tok] {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"code":401,"status":"UNAUTHENTICATED"}}`)
		return
	}
	if len(f.replies) > 0 {
		reply := f.replies[0]
		f.replies = f.replies[1:]
		for k, v := range reply.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(reply.status)
		io.WriteString(w, reply.body)
		return
	}
	io.WriteString(w, `{"name":"projects/proj-1/messages/1"}`)
}

func (f *fakeFCM) revoke() {
	f.mu.Lock()
	f.valid = map[string]bool{}
	f.mu.Unlock()
}

func (f *fakeFCM) counts() (tokens, sends int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.issued), len(f.sends)
}

// testRSAKey is generated once: 2048-bit generation is slow under -race.
var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return key
})

func newFCMFixture(t *testing.T) (*fakeFCM, *FCM) {
	key := testRSAKey()
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	f := newFakeFCM(t, &key.PublicKey)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	sa, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "proj-1",
		"private_key_id": "kid-1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "pusher@proj-1.iam.gserviceaccount.com",
		"token_uri":      f.srv.URL + "/token",
	})
	fcm, err := NewFCM(FCMConfig{ServiceAccountJSON: sa, Endpoint: f.srv.URL, Client: f.srv.Client(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return f, fcm
}

func androidNote() *realtime.Notification {
	return &realtime.Notification{
		ID:     "n1",
		Device: realtime.Device{ClientID: "bob", Platform: realtime.PlatformAndroid, Token: "reg-token"},
		Payload: json.RawMessage(`{"alert":"hi","title":"Tom","badge":4,"sound":"ding","category":"msg",` +
			`"custom":{"k":[1,2]},"n":1.5,"from":"reserved","google.x":"reserved"}`),
		CreatedAt: time.Unix(1700000000-3600, 0),
	}
}

func TestFCMPush(t *testing.T) {
	f, fcm := newFCMFixture(t)
	if err := fcm.Push(t.Context(), androidNote()); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(f.sends[0])
	want := `{"message":{"android":{"notification":{"notification_count":4,"sound":"ding"},"priority":"high","ttl":"601200s"},` +
		`"data":{"category":"msg","custom":"{\"k\":[1,2]}","n":"1.5"},"notification":{"body":"hi","title":"Tom"},"token":"reg-token"}}`
	if string(got) != want {
		t.Errorf("send body\n got %s\nwant %s", got, want)
	}

	// The access token is reused.
	fcm.Push(t.Context(), androidNote())
	if tokens, sends := f.counts(); tokens != 1 || sends != 2 {
		t.Errorf("tokens %d sends %d; want the token reused", tokens, sends)
	}

	// A data-only payload.
	n := androidNote()
	n.Payload = json.RawMessage(`{"k":"v","badge":1}`)
	fcm.Push(t.Context(), n)
	got, _ = json.Marshal(f.sends[len(f.sends)-1]["message"])
	if want := `{"android":{"priority":"high","ttl":"601200s"},"data":{"k":"v"},"token":"reg-token"}`; string(got) != want {
		t.Errorf("data-only message\n got %s\nwant %s", got, want)
	}
}

func TestFCMRenewsTokenNearExpiry(t *testing.T) {
	// Token expiry is x/oauth2's, on the system clock: a token with more
	// than a minute left is reused, one with less is not.
	f, fcm := newFCMFixture(t)
	f.mu.Lock()
	f.expiresIn = 90
	f.mu.Unlock()
	for range 2 {
		if err := fcm.Push(t.Context(), androidNote()); err != nil {
			t.Fatal(err)
		}
	}
	if tokens, _ := f.counts(); tokens != 1 {
		t.Errorf("tokens %d; want a token with 90 s left reused", tokens)
	}

	f, fcm = newFCMFixture(t)
	f.mu.Lock()
	f.expiresIn = 50
	f.mu.Unlock()
	for range 2 {
		if err := fcm.Push(t.Context(), androidNote()); err != nil {
			t.Fatal(err)
		}
	}
	if tokens, sends := f.counts(); tokens != 2 || sends != 2 {
		t.Errorf("tokens %d sends %d; want a token expiring within a minute renewed", tokens, sends)
	}
}

func TestFCMRefreshesRevokedToken(t *testing.T) {
	f, fcm := newFCMFixture(t)
	if err := fcm.Push(t.Context(), androidNote()); err != nil {
		t.Fatal(err)
	}
	f.revoke()
	if err := fcm.Push(t.Context(), androidNote()); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	if tokens, sends := f.counts(); tokens != 2 || sends != 3 {
		t.Errorf("tokens %d sends %d; want one refresh and one retry", tokens, sends)
	}
}

func TestFCMErrors(t *testing.T) {
	unregistered := `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`
	badToken := `{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"},{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"Invalid registration token"}]}]}}`
	badPayload := `{"error":{"code":400,"message":"Invalid value at 'message.data'","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.data[0].value"}]}]}}`
	mismatch := `{"error":{"code":403,"status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"SENDER_ID_MISMATCH"}]}}`
	for _, tc := range []struct {
		name    string
		reply   fcmReply
		outcome Outcome
		after   time.Duration
	}{
		{"404 UNREGISTERED", fcmReply{status: 404, body: unregistered}, BadToken, 0},
		{"400 bad token", fcmReply{status: 400, body: badToken}, BadToken, 0},
		{"403 SENDER_ID_MISMATCH", fcmReply{status: 403, body: mismatch}, BadToken, 0},
		{"400 bad payload", fcmReply{status: 400, body: badPayload}, Permanent, 0},
		{"429 QUOTA_EXCEEDED", fcmReply{status: 429, body: `{"error":{"status":"RESOURCE_EXHAUSTED"}}`, header: map[string]string{"Retry-After": "30"}}, Retryable, 30 * time.Second},
		{"503 UNAVAILABLE", fcmReply{status: 503, body: `{"error":{"status":"UNAVAILABLE"}}`}, Retryable, 0},
		{"500 INTERNAL", fcmReply{status: 500}, Retryable, 0},
		{"401 twice", fcmReply{status: 401, body: `{"error":{"status":"UNAUTHENTICATED"}}`}, Retryable, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, fcm := newFCMFixture(t)
			f.replies = []fcmReply{tc.reply}
			if tc.name == "401 twice" {
				f.replies = append(f.replies, tc.reply)
			}
			err := fcm.Push(t.Context(), androidNote())
			var pe *ProviderError
			if !errors.As(err, &pe) || pe.Outcome != tc.outcome || pe.RetryAfter != tc.after {
				t.Fatalf("Push = %v, want outcome %v after %v", err, tc.outcome, tc.after)
			}
			if errors.Is(err, realtime.ErrBadDeviceToken) != (tc.outcome == BadToken) || errors.Is(err, ErrPermanent) != (tc.outcome == Permanent) {
				t.Errorf("errors.Is mismatch for %v", err)
			}
		})
	}
}

func TestFCMTokenEndpointDown(t *testing.T) {
	f, fcm := newFCMFixture(t)
	f.tokenUp = false
	err := fcm.Push(t.Context(), androidNote())
	if err == nil || errors.Is(err, ErrPermanent) || errors.Is(err, realtime.ErrBadDeviceToken) {
		t.Fatalf("Push = %v, want a retryable error", err)
	}
	if _, sends := f.counts(); sends != 0 {
		t.Error("sent without a token")
	}
}

func TestFCMTokenEndpointHangs(t *testing.T) {
	// x/oauth2 does not give the token request the push's context, so a
	// client without a Timeout gets fcmTokenTimeout.
	defer func(d time.Duration) { fcmTokenTimeout = d }(fcmTokenTimeout)
	fcmTokenTimeout = 200 * time.Millisecond
	f, fcm := newFCMFixture(t)
	hold := make(chan struct{})
	f.mu.Lock()
	f.tokenHold = hold
	f.mu.Unlock()
	defer close(hold) // before the server's Close, which waits for the handler
	start := time.Now()
	err := fcm.Push(t.Context(), androidNote())
	if err == nil || errors.Is(err, ErrPermanent) {
		t.Fatalf("Push = %v, want a retryable error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Push took %v with a hanging token endpoint", took)
	}
	if _, sends := f.counts(); sends != 0 {
		t.Error("sent without a token")
	}
}

func TestNewFCMRejectsBadConfig(t *testing.T) {
	for _, sa := range []string{
		``, `{}`,
		`{"client_email":"a","token_uri":"u","private_key":"junk","project_id":"p"}`,
		`{"type":"service_account","client_email":"a","token_uri":"u","private_key":"junk","project_id":"p"}`,
		`{"type":"authorized_user","client_id":"a","client_secret":"s","refresh_token":"r"}`,
	} {
		if _, err := NewFCM(FCMConfig{ServiceAccountJSON: []byte(sa)}); err == nil {
			t.Errorf("NewFCM(%s) succeeded", sa)
		}
	}
}

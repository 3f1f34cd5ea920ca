package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/leanhub/realtime"
)

// FCMEndpoint is the Firebase Cloud Messaging API host.
const FCMEndpoint = "https://fcm.googleapis.com"

const fcmScope = "https://www.googleapis.com/auth/firebase.messaging"

// FCMConfig configures an FCM pusher.
type FCMConfig struct {
	// ServiceAccountJSON is a Google service account key file (the JSON
	// downloaded from the Firebase console, "type": "service_account"):
	// its client_email, private_key (PEM, PKCS #8 or PKCS #1 RSA),
	// private_key_id, token_uri (Google's token endpoint when empty) and
	// project_id are used. Required.
	ServiceAccountJSON []byte
	// ProjectID overrides the key file's project_id.
	ProjectID string
	// Endpoint overrides FCMEndpoint (for tests).
	Endpoint string
	// Client sends the token and send requests; nil means
	// http.DefaultClient. The Queue's PushTimeout bounds each send; a
	// token request is bounded by Client.Timeout, or by 10s when that is
	// 0, because x/oauth2 does not pass the caller's context on to the
	// token endpoint.
	Client *http.Client
	// Now is the clock for the message TTL and Retry-After; nil means
	// time.Now. Access-token expiry is checked by x/oauth2 against the
	// system clock.
	Now func() time.Time
}

// fcmTokenTimeout bounds a token request when FCMConfig.Client has no
// Timeout of its own.
var fcmTokenTimeout = 10 * time.Second

// FCM is a Pusher for Firebase Cloud Messaging's HTTP v1 API. It gets
// OAuth 2 access tokens with golang.org/x/oauth2/google's JWT config (an
// RS256 assertion signed with the service account's key, exchanged at the
// key file's token_uri for the firebase.messaging scope) and reuses each
// token until a minute before it expires.
//
// The payload's alert becomes notification.body (or, when alert is an
// object, its title and body), "title" notification.title, "sound"
// android.notification.sound and a numeric "badge"
// android.notification.notification_count; every other key goes into data,
// strings as they are and other values as JSON text. Keys FCM reserves in
// data ("from", "notification", "message_type", "google…", "gcm…") are left
// out. A payload without alert or title is sent as a data-only message.
// android.ttl is what remains of the 7-day validity.
//
// Answers: UNREGISTERED (404), SENDER_ID_MISMATCH, and INVALID_ARGUMENT
// about the token are realtime.ErrBadDeviceToken; 429 and 5xx are retried
// (honouring Retry-After); 401 makes a new access token and tries once
// more; other 4xx are permanent. Errors are *ProviderError, except a failed
// token exchange, which is retried.
type FCM struct {
	sendURL   string
	client    *http.Client
	now       func() time.Time
	newTokens func() oauth2.TokenSource

	mu     sync.Mutex
	tokens oauth2.TokenSource // caching; replaced when FCM refuses its token
}

// NewFCM checks cfg and returns an FCM pusher.
func NewFCM(cfg FCMConfig) (*FCM, error) {
	jwtCfg, err := google.JWTConfigFromJSON(cfg.ServiceAccountJSON, fcmScope)
	if err != nil {
		return nil, fmt.Errorf("push: FCM service account: %w", err)
	}
	if jwtCfg.Email == "" || len(jwtCfg.PrivateKey) == 0 {
		return nil, errors.New("push: FCM service account needs client_email and private_key")
	}
	// x/oauth2 parses the key only when it first signs; a bad key should
	// fail here, at startup.
	if _, err := jwt.ParseRSAPrivateKeyFromPEM(jwtCfg.PrivateKey); err != nil {
		return nil, fmt.Errorf("push: FCM service account: private_key: %w", err)
	}
	project := cfg.ProjectID
	if project == "" {
		var sa struct {
			ProjectID string `json:"project_id"`
		}
		json.Unmarshal(cfg.ServiceAccountJSON, &sa) // it parsed above
		project = sa.ProjectID
	}
	if project == "" {
		return nil, errors.New("push: FCM needs a project id")
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = FCMEndpoint
	}
	f := &FCM{
		sendURL: strings.TrimSuffix(endpoint, "/") + "/v1/projects/" + url.PathEscape(project) + "/messages:send",
		client:  cfg.Client, now: cfg.Now,
	}
	if f.client == nil {
		f.client = http.DefaultClient
	}
	if f.now == nil {
		f.now = time.Now
	}
	tokenClient := *f.client
	if tokenClient.Timeout == 0 {
		tokenClient.Timeout = fcmTokenTimeout
	}
	tokenCtx := context.WithValue(context.Background(), oauth2.HTTPClient, &tokenClient)
	f.newTokens = func() oauth2.TokenSource {
		return oauth2.ReuseTokenSourceWithExpiry(nil, jwtCfg.TokenSource(tokenCtx), time.Minute)
	}
	f.tokens = f.newTokens()
	return f, nil
}

// Push implements realtime.Pusher.
func (f *FCM) Push(ctx context.Context, n *realtime.Notification) error {
	body, err := f.message(n)
	if err != nil {
		return &ProviderError{Provider: "fcm", Reason: "payload: " + err.Error(), Outcome: Permanent}
	}
	for attempt := 0; ; attempt++ {
		token, source, err := f.accessToken(ctx)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.sendURL, bytes.NewReader(body))
		if err != nil {
			return &ProviderError{Provider: "fcm", Reason: err.Error(), Outcome: Permanent}
		}
		token.SetAuthHeader(req)
		req.Header.Set("Content-Type", "application/json")
		resp, err := f.client.Do(req)
		if err != nil {
			return fmt.Errorf("push: fcm: %w", err)
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return nil
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			f.dropToken(source)
			continue
		}
		return fcmError(resp, answer, f.now())
	}
}

// fcmError classifies an FCM error answer.
func fcmError(resp *http.Response, answer []byte, now time.Time) *ProviderError {
	var decoded struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
			Details []struct {
				Type            string `json:"@type"`
				ErrorCode       string `json:"errorCode"`
				FieldViolations []struct {
					Field string `json:"field"`
				} `json:"fieldViolations"`
			} `json:"details"`
		} `json:"error"`
	}
	json.Unmarshal(answer, &decoded)
	code := decoded.Error.Status
	aboutToken := strings.Contains(decoded.Error.Message, "registration token")
	for _, d := range decoded.Error.Details {
		if d.ErrorCode != "" {
			code = d.ErrorCode
		}
		for _, v := range d.FieldViolations {
			if v.Field == "message.token" {
				aboutToken = true
			}
		}
	}
	pe := &ProviderError{Provider: "fcm", StatusCode: resp.StatusCode, Reason: code,
		RetryAfter: parseRetryAfter(resp.Header, now)}
	switch {
	case code == "UNREGISTERED", resp.StatusCode == http.StatusNotFound, code == "SENDER_ID_MISMATCH":
		pe.Outcome = BadToken
	case code == "INVALID_ARGUMENT" && aboutToken:
		pe.Outcome = BadToken
	case resp.StatusCode == http.StatusUnauthorized:
		pe.Outcome = Retryable // credentials the operator can fix
	default:
		pe.Outcome = statusOutcome(resp.StatusCode)
	}
	return pe
}

// accessToken returns a cached OAuth 2 access token, or exchanges a new
// JWT assertion for one when there is none or it expires within a minute,
// and the token source it came from.
func (f *FCM) accessToken(ctx context.Context) (*oauth2.Token, oauth2.TokenSource, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("push: fcm: %w", err)
	}
	f.mu.Lock()
	ts := f.tokens
	f.mu.Unlock()
	tok, err := ts.Token()
	if err != nil {
		// Retryable: a bad key or clock is for the operator to fix, and
		// the pushes should survive until then.
		return nil, nil, fmt.Errorf("push: fcm: token exchange: %w", err)
	}
	return tok, ts, nil
}

// dropToken forgets the access token FCM refused by starting a new token
// source (x/oauth2's caching source cannot be told to forget), unless a
// concurrent push already did.
func (f *FCM) dropToken(refused oauth2.TokenSource) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tokens == refused {
		f.tokens = f.newTokens()
	}
}

type fcmMessage struct {
	Token        string            `json:"token"`
	Notification *fcmNotification  `json:"notification,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
	Android      fcmAndroid        `json:"android"`
}

type fcmNotification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

type fcmAndroid struct {
	Priority     string                  `json:"priority"`
	TTL          string                  `json:"ttl,omitempty"`
	Notification *fcmAndroidNotification `json:"notification,omitempty"`
}

type fcmAndroidNotification struct {
	Sound             string `json:"sound,omitempty"`
	NotificationCount *int   `json:"notification_count,omitempty"`
}

// message builds the send request body for n.
func (f *FCM) message(n *realtime.Notification) ([]byte, error) {
	obj := map[string]any{}
	if len(n.Payload) > 0 {
		var err error
		if obj, err = decodeObject(n.Payload); err != nil {
			return nil, err
		}
	}
	m := fcmMessage{Token: n.Device.Token, Android: fcmAndroid{Priority: "high"}}
	var note fcmNotification
	switch alert := obj["alert"].(type) {
	case string:
		note.Body = alert
	case map[string]any:
		note.Title, _ = alert["title"].(string)
		note.Body, _ = alert["body"].(string)
	}
	if title, ok := obj["title"].(string); ok {
		note.Title = title
	}
	if note != (fcmNotification{}) {
		m.Notification = &note
	}
	var an fcmAndroidNotification
	an.Sound, _ = obj["sound"].(string)
	if b, ok := obj["badge"].(json.Number); ok {
		if v, err := strconv.Atoi(b.String()); err == nil {
			an.NotificationCount = &v
		}
	}
	if m.Notification != nil && an != (fcmAndroidNotification{}) {
		m.Android.Notification = &an
	}
	for _, k := range []string{"alert", "title", "sound", "badge"} {
		delete(obj, k)
	}
	for k, v := range obj {
		if fcmReserved(k) {
			continue
		}
		if m.Data == nil {
			m.Data = map[string]string{}
		}
		if s, ok := v.(string); ok {
			m.Data[k] = s
			continue
		}
		b, err := encode(v)
		if err != nil {
			return nil, err
		}
		m.Data[k] = string(b)
	}
	if !n.CreatedAt.IsZero() {
		left := n.CreatedAt.Add(realtime.PushValidity).Sub(f.now())
		m.Android.TTL = strconv.FormatInt(max(int64(left/time.Second), 0), 10) + "s"
	}
	return json.Marshal(map[string]any{"message": m})
}

func fcmReserved(k string) bool {
	switch k {
	case "from", "notification", "message_type":
		return true
	}
	return strings.HasPrefix(k, "google") || strings.HasPrefix(k, "gcm")
}

package push

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/leanhub/realtime"
)

// FCMEndpoint is the Firebase Cloud Messaging API host.
const FCMEndpoint = "https://fcm.googleapis.com"

const fcmScope = "https://www.googleapis.com/auth/firebase.messaging"

// FCMConfig configures an FCM pusher.
type FCMConfig struct {
	// ServiceAccountJSON is a Google service account key file (the JSON
	// downloaded from the Firebase console): its client_email, private_key
	// (PEM, PKCS #8 or PKCS #1 RSA), private_key_id, token_uri and
	// project_id are used. Required.
	ServiceAccountJSON []byte
	// ProjectID overrides the key file's project_id.
	ProjectID string
	// Endpoint overrides FCMEndpoint (for tests).
	Endpoint string
	// Client sends the token and send requests; nil means
	// http.DefaultClient (the Queue's PushTimeout bounds each call).
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// FCM is a Pusher for Firebase Cloud Messaging's HTTP v1 API. It gets
// OAuth 2 access tokens by signing an RS256 JWT assertion with the service
// account's key and exchanging it at the key's token_uri, and reuses each
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
	email, keyID, tokenURI, sendURL string
	key                             *rsa.PrivateKey
	client                          *http.Client
	now                             func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// NewFCM checks cfg and returns an FCM pusher.
func NewFCM(cfg FCMConfig) (*FCM, error) {
	var sa struct {
		ProjectID    string `json:"project_id"`
		PrivateKeyID string `json:"private_key_id"`
		PrivateKey   string `json:"private_key"`
		ClientEmail  string `json:"client_email"`
		TokenURI     string `json:"token_uri"`
	}
	if err := json.Unmarshal(cfg.ServiceAccountJSON, &sa); err != nil {
		return nil, fmt.Errorf("push: FCM service account: %w", err)
	}
	if sa.ClientEmail == "" || sa.PrivateKey == "" || sa.TokenURI == "" {
		return nil, errors.New("push: FCM service account needs client_email, private_key and token_uri")
	}
	key, err := parseRSAKey([]byte(sa.PrivateKey))
	if err != nil {
		return nil, fmt.Errorf("push: FCM service account: %w", err)
	}
	project := cfg.ProjectID
	if project == "" {
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
		email: sa.ClientEmail, keyID: sa.PrivateKeyID, tokenURI: sa.TokenURI, key: key,
		sendURL: strings.TrimSuffix(endpoint, "/") + "/v1/projects/" + url.PathEscape(project) + "/messages:send",
		client:  cfg.Client, now: cfg.Now,
	}
	if f.client == nil {
		f.client = http.DefaultClient
	}
	if f.now == nil {
		f.now = time.Now
	}
	return f, nil
}

func parseRSAKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("private_key: no PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private_key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("private_key: not an RSA key")
	}
	return rk, nil
}

// Push implements realtime.Pusher.
func (f *FCM) Push(ctx context.Context, n *realtime.Notification) error {
	body, err := f.message(n)
	if err != nil {
		return &ProviderError{Provider: "fcm", Reason: "payload: " + err.Error(), Outcome: Permanent}
	}
	for attempt := 0; ; attempt++ {
		token, err := f.accessToken(ctx)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.sendURL, bytes.NewReader(body))
		if err != nil {
			return &ProviderError{Provider: "fcm", Reason: err.Error(), Outcome: Permanent}
		}
		req.Header.Set("Authorization", "Bearer "+token)
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
			f.dropToken(token)
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

// accessToken returns a cached OAuth 2 access token, exchanging a fresh
// JWT assertion when there is none or it expires within a minute.
func (f *FCM) accessToken(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if f.token != "" && now.Before(f.expires.Add(-time.Minute)) {
		return f.token, nil
	}
	header := map[string]string{"alg": "RS256", "typ": "JWT"}
	if f.keyID != "" {
		header["kid"] = f.keyID
	}
	assertion, err := signJWT(header, map[string]any{
		"iss": f.email, "scope": fcmScope, "aud": f.tokenURI,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}, rs256(f.key))
	if err != nil {
		return "", fmt.Errorf("push: fcm: sign assertion: %w (%w)", err, ErrPermanent)
	}
	form := url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"assertion":  {assertion},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.tokenURI, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("push: fcm: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := f.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("push: fcm: token request: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		// Retryable: a bad key or clock is for the operator to fix, and
		// the pushes should survive until then.
		return "", fmt.Errorf("push: fcm: token exchange: %d %s", resp.StatusCode, bytes.TrimSpace(answer))
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(answer, &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("push: fcm: token exchange: bad answer %q", answer)
	}
	if tok.ExpiresIn <= 0 {
		tok.ExpiresIn = 3600
	}
	f.token, f.expires = tok.AccessToken, now.Add(time.Duration(tok.ExpiresIn)*time.Second)
	return f.token, nil
}

// dropToken forgets an access token FCM refused, unless it was replaced.
func (f *FCM) dropToken(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.token == token {
		f.token = ""
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

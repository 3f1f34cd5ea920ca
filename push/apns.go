package push

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/leanhub/realtime"
)

// Apple's APNs hosts.
const (
	APNsProductionHost = "https://api.push.apple.com"
	APNsSandboxHost    = "https://api.sandbox.push.apple.com"
)

// APNsKey is a token-authentication signing key from Apple's developer
// account (a .p8 file) and its key id.
type APNsKey struct {
	KeyID string
	Key   *ecdsa.PrivateKey
}

// APNsConfig configures an APNs pusher.
type APNsConfig struct {
	// Keys maps Apple team ids to their signing keys. A notification's
	// TeamID (from "_apns_team_id") picks one; required, at least one.
	Keys map[string]APNsKey
	// DefaultTeamID is used for notifications without a TeamID; "" is
	// allowed only when Keys has exactly one entry, which is then the
	// default.
	DefaultTeamID string
	// BundleID is the apns-topic for devices without a Topic.
	BundleID string
	// Host and SandboxHost override Apple's hosts (for tests); "" means
	// APNsProductionHost and APNsSandboxHost. The sandbox is used when the
	// notification's or the device's Profile is "dev".
	Host, SandboxHost string
	// Client sends the requests; it must speak HTTP/2 (APNs requires it).
	// nil means a client made for APNs.
	Client *http.Client
	// TokenRefresh is how long a provider token is reused; Apple refuses
	// tokens older than an hour and asks for no more than one new token
	// per 20 minutes. 0 means 50 minutes.
	TokenRefresh time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// APNs is a Pusher for Apple's push notification service, with
// token-based (JWT) authentication over HTTP/2.
//
// The payload's alert, badge, sound, category, thread-id,
// content-available and mutable-content keys go into "aps"; a "title"
// beside a string alert makes the alert {"title", "body"}; every other key
// is sent at the top level. A badge still "Increment" is left out.
// apns-expiration is the end of the notification's 7-day validity;
// apns-push-type is "alert" (priority 10), or "background" (priority 5) for
// a payload with no alert, sound or badge; apns-id is the notification id
// when it is UUID-shaped (NotificationID's are).
//
// Answers: 410, or reason BadDeviceToken, Unregistered or
// DeviceTokenNotForTopic, is realtime.ErrBadDeviceToken; 429 and 5xx are
// retried; 403 ExpiredProviderToken makes a new token and tries once more;
// other 403s (credentials) are retried later; other 4xx are permanent.
// Errors are *ProviderError.
type APNs struct {
	cfg    APNsConfig
	client *http.Client
	now    func() time.Time

	mu     sync.Mutex
	tokens map[string]providerToken // team id -> cached JWT
}

type providerToken struct {
	jwt    string
	issued time.Time
}

// NewAPNs checks cfg and returns an APNs pusher.
func NewAPNs(cfg APNsConfig) (*APNs, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("push: APNs needs at least one key")
	}
	for team, k := range cfg.Keys {
		if team == "" || k.KeyID == "" || k.Key == nil {
			return nil, fmt.Errorf("push: APNs key for team %q needs a team id, a key id and a key", team)
		}
		if k.Key.Curve.Params().BitSize != 256 {
			return nil, fmt.Errorf("push: APNs key %s is not a P-256 key", k.KeyID)
		}
	}
	if cfg.DefaultTeamID == "" && len(cfg.Keys) == 1 {
		for team := range cfg.Keys {
			cfg.DefaultTeamID = team
		}
	}
	if _, ok := cfg.Keys[cfg.DefaultTeamID]; !ok && cfg.DefaultTeamID != "" {
		return nil, fmt.Errorf("push: APNs DefaultTeamID %q has no key", cfg.DefaultTeamID)
	}
	if cfg.Host == "" {
		cfg.Host = APNsProductionHost
	}
	if cfg.SandboxHost == "" {
		cfg.SandboxHost = APNsSandboxHost
	}
	if cfg.TokenRefresh <= 0 {
		cfg.TokenRefresh = 50 * time.Minute
	}
	a := &APNs{cfg: cfg, client: cfg.Client, now: cfg.Now, tokens: map[string]providerToken{}}
	if a.client == nil {
		t := &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:   true,
			IdleConnTimeout:     10 * time.Minute,
			TLSHandshakeTimeout: 10 * time.Second,
		}
		t.Protocols = new(http.Protocols)
		t.Protocols.SetHTTP2(true)
		a.client = &http.Client{Transport: t}
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// ParseAPNsKey reads a .p8 signing key: a PEM "PRIVATE KEY" block holding a
// PKCS #8 P-256 key, as Apple hands it out (a SEC 1 "EC PRIVATE KEY" block
// is taken too).
func ParseAPNsKey(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	ec, err := jwt.ParseECPrivateKeyFromPEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("push: APNs key: %w", err)
	}
	if ec.Curve.Params().BitSize != 256 {
		return nil, errors.New("push: APNs key: not a P-256 ECDSA key")
	}
	return ec, nil
}

// LoadAPNsKey reads a .p8 signing key file.
func LoadAPNsKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("push: APNs key: %w", err)
	}
	return ParseAPNsKey(b)
}

// Push implements realtime.Pusher.
func (a *APNs) Push(ctx context.Context, n *realtime.Notification) error {
	team := n.TeamID
	if team == "" {
		team = a.cfg.DefaultTeamID
	}
	key, ok := a.cfg.Keys[team]
	if !ok {
		return &ProviderError{Provider: "apns", Reason: fmt.Sprintf("no key for team %q", team), Outcome: Permanent}
	}
	topic := n.Device.Topic
	if topic == "" {
		topic = a.cfg.BundleID
	}
	body, pushType, err := apnsBody(n.Payload)
	if err != nil {
		return &ProviderError{Provider: "apns", Reason: "payload: " + err.Error(), Outcome: Permanent}
	}
	host := a.cfg.Host
	if n.Profile == "dev" || n.Device.Profile == "dev" {
		host = a.cfg.SandboxHost
	}
	url := host + "/3/device/" + n.Device.Token
	for attempt := 0; ; attempt++ {
		bearer, err := a.token(team, key)
		if err != nil {
			return fmt.Errorf("push: apns: sign token: %w (%w)", err, ErrPermanent)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return &ProviderError{Provider: "apns", Reason: err.Error(), Outcome: Permanent}
		}
		req.Header.Set("authorization", "bearer "+bearer)
		req.Header.Set("content-type", "application/json")
		req.Header.Set("apns-push-type", pushType)
		if pushType == "background" {
			req.Header.Set("apns-priority", "5") // Apple requires 5 for background pushes
		} else {
			req.Header.Set("apns-priority", "10")
		}
		if topic != "" {
			req.Header.Set("apns-topic", topic)
		}
		if !n.CreatedAt.IsZero() {
			req.Header.Set("apns-expiration", strconv.FormatInt(n.CreatedAt.Add(realtime.PushValidity).Unix(), 10))
		}
		if isUUID(n.ID) {
			req.Header.Set("apns-id", n.ID)
		}
		resp, err := a.client.Do(req)
		if err != nil {
			return fmt.Errorf("push: apns: %w", err)
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		var decoded struct {
			Reason string `json:"reason"`
		}
		json.Unmarshal(answer, &decoded)
		pe := &ProviderError{Provider: "apns", StatusCode: resp.StatusCode, Reason: decoded.Reason,
			RetryAfter: parseRetryAfter(resp.Header, a.now())}
		switch {
		case resp.StatusCode == http.StatusGone, decoded.Reason == "BadDeviceToken",
			decoded.Reason == "Unregistered", decoded.Reason == "DeviceTokenNotForTopic":
			pe.Outcome = BadToken
		case resp.StatusCode == http.StatusForbidden && decoded.Reason == "ExpiredProviderToken" && attempt == 0:
			a.dropToken(team, bearer)
			continue
		case resp.StatusCode == http.StatusForbidden:
			// A credentials problem the operator can fix; keep the push.
			pe.Outcome = Retryable
		default:
			pe.Outcome = statusOutcome(resp.StatusCode)
		}
		return pe
	}
}

// token returns the team's cached provider token, signing a new one when
// it is older than TokenRefresh. The token is what Apple asks for: ES256,
// header kid the key id, claims iss the team id and iat the issue time
// (golang-jwt adds typ "JWT", which APNs accepts).
func (a *APNs) token(team string, key APNsKey) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if t, ok := a.tokens[team]; ok && now.Sub(t.issued) < a.cfg.TokenRefresh && !now.Before(t.issued) {
		return t.jwt, nil
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{
		Issuer:   team,
		IssuedAt: jwt.NewNumericDate(now),
	})
	tok.Header["kid"] = key.KeyID
	signed, err := tok.SignedString(key.Key)
	if err != nil {
		return "", err
	}
	a.tokens[team] = providerToken{jwt: signed, issued: now}
	return signed, nil
}

// dropToken forgets a token APNs called expired, unless a concurrent push
// already replaced it.
func (a *APNs) dropToken(team, token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tokens[team].jwt == token {
		delete(a.tokens, team)
	}
}

// apsKeys are the LeanCloud payload keys that belong in "aps".
var apsKeys = map[string]bool{
	"alert": true, "badge": true, "sound": true, "category": true, "thread-id": true,
	"content-available": true, "mutable-content": true,
}

// apnsBody builds the APNs JSON body and push type from a payload.
func apnsBody(payload json.RawMessage) ([]byte, string, error) {
	obj := map[string]any{}
	if len(payload) > 0 {
		var err error
		if obj, err = decodeObject(payload); err != nil {
			return nil, "", err
		}
	}
	aps := map[string]any{}
	if a, ok := obj["aps"].(map[string]any); ok { // a payload already in APNs shape
		aps = a
	}
	delete(obj, "aps")
	for k, v := range obj {
		if apsKeys[k] {
			aps[k] = v
			delete(obj, k)
		}
	}
	if title, ok := obj["title"]; ok {
		if body, isString := aps["alert"].(string); isString {
			aps["alert"] = map[string]any{"title": title, "body": body}
			delete(obj, "title")
		}
	}
	if _, ok := aps["badge"].(string); ok {
		// "Increment" that was never filled, or any other string: APNs
		// takes only numbers.
		delete(aps, "badge")
	}
	pushType := "alert"
	if _, hasAlert := aps["alert"]; !hasAlert {
		if _, hasSound := aps["sound"]; !hasSound {
			if _, hasBadge := aps["badge"]; !hasBadge {
				pushType = "background"
			}
		}
	}
	obj["aps"] = aps
	b, err := encode(obj)
	return b, pushType, err
}

package push

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/leanhub/realtime"
)

// Webhook headers.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the
	// request body keyed with the shared secret.
	SignatureHeader = "X-Realtime-Signature"
	// TimestampHeader carries the Unix seconds at which the request was
	// sent; the body's "timestamp" holds the same value under the
	// signature.
	TimestampHeader = "X-Realtime-Timestamp"
)

// WebhookEvent is the JSON body a Webhook POSTs:
//
//	{
//	  "id": "…",                  // notification id: stable across retries, for de-duplication
//	  "device": {"clientId": "bob", "platform": "ios", "token": "…", "topic": "", "profile": "", "badge": 3},
//	  "convId": "…", "from": "tom", "msgId": "…",
//	  "payload": {"alert": "…", "badge": 3},   // the rendered push content
//	  "profile": "dev", "teamId": "",          // from _profile and _apns_team_id
//	  "created": 1700000000000,                // when the push was built, Unix ms
//	  "attempts": 0,                           // earlier failed deliveries
//	  "timestamp": 1700000001                  // when this request was sent, Unix s
//	}
type WebhookEvent struct {
	ID        string          `json:"id"`
	Device    WebhookDevice   `json:"device"`
	ConvID    string          `json:"convId"`
	From      string          `json:"from"`
	MsgID     string          `json:"msgId"`
	Payload   json.RawMessage `json:"payload"`
	Profile   string          `json:"profile,omitempty"`
	TeamID    string          `json:"teamId,omitempty"`
	Created   int64           `json:"created"`
	Attempts  int             `json:"attempts"`
	Timestamp int64           `json:"timestamp"`
}

// WebhookDevice is the device of a WebhookEvent.
type WebhookDevice struct {
	ClientID string `json:"clientId"`
	Platform string `json:"platform"`
	Token    string `json:"token"`
	Topic    string `json:"topic,omitempty"`
	Profile  string `json:"profile,omitempty"`
	Badge    int    `json:"badge"`
}

// Webhook is a Pusher that POSTs each notification as a WebhookEvent to an
// HTTP endpoint of the application, which forwards it to whatever service it
// likes. The request is signed (see SignatureHeader; receivers check it with
// VerifyWebhook).
//
// The answer decides the outcome: 2xx is success; 410 Gone, or a JSON body
// {"error":"bad_token"} with any status, means the device token is invalid
// (realtime.ErrBadDeviceToken: the device is unregistered); 429 and 5xx are
// retried (honouring Retry-After); any other status is a permanent failure
// (the error wraps ErrPermanent and the notification is dropped). All are
// reported as *ProviderError.
type Webhook struct {
	URL    string
	Secret []byte
	// Client sends the requests; nil means http.DefaultClient (the Queue's
	// PushTimeout bounds each call).
	Client *http.Client
	// Now is the clock for the timestamp; nil means time.Now.
	Now func() time.Time
}

// Push implements realtime.Pusher.
func (w *Webhook) Push(ctx context.Context, n *realtime.Notification) error {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	ts := now().Unix()
	body, err := json.Marshal(WebhookEvent{
		ID: n.ID,
		Device: WebhookDevice{
			ClientID: n.Device.ClientID, Platform: string(n.Device.Platform), Token: n.Device.Token,
			Topic: n.Device.Topic, Profile: n.Device.Profile, Badge: n.Device.Badge,
		},
		ConvID: n.ConvID, From: n.From, MsgID: n.MsgID,
		Payload: n.Payload, Profile: n.Profile, TeamID: n.TeamID,
		Created: n.CreatedAt.UnixMilli(), Attempts: n.Attempts, Timestamp: ts,
	})
	if err != nil {
		return fmt.Errorf("push: webhook: encode: %w (%w)", err, ErrPermanent)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("push: webhook: %w (%w)", err, ErrPermanent)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, "sha256="+hex.EncodeToString(webhookMAC(w.Secret, body)))
	req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
	client := w.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("push: webhook: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var decoded struct {
		Error string `json:"error"`
	}
	json.Unmarshal(answer, &decoded)
	if decoded.Error == "bad_token" {
		return &ProviderError{Provider: "webhook", StatusCode: resp.StatusCode, Reason: "bad_token", Outcome: BadToken}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return &ProviderError{
		Provider: "webhook", StatusCode: resp.StatusCode, Reason: decoded.Error,
		Outcome: statusOutcome(resp.StatusCode), RetryAfter: parseRetryAfter(resp.Header, now()),
	}
}

func webhookMAC(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

// MaxWebhookBody bounds the body VerifyWebhook reads.
const MaxWebhookBody = 1 << 20

// WebhookTolerance is how far a webhook's timestamp may be from the
// receiver's clock before VerifyWebhook refuses it as a replay.
const WebhookTolerance = 5 * time.Minute

// ErrWebhookSignature is returned by VerifyWebhook for a request that is
// not signed with the secret, or is too old.
var ErrWebhookSignature = errors.New("push: bad webhook signature")

// VerifyWebhook checks a request sent by Webhook, for use in its receiver:
// the signature must match the body under secret, and the signed timestamp
// must match the header and be within WebhookTolerance of now. It returns
// the decoded event and leaves r.Body readable again. Receivers should still
// de-duplicate by event ID: a retried notification is sent again.
func VerifyWebhook(secret []byte, r *http.Request) (*WebhookEvent, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxWebhookBody+1))
	r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("push: read webhook: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) > MaxWebhookBody {
		return nil, fmt.Errorf("push: webhook body over %d bytes", MaxWebhookBody)
	}
	sig, ok := strings.CutPrefix(r.Header.Get(SignatureHeader), "sha256=")
	if !ok {
		return nil, ErrWebhookSignature
	}
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, webhookMAC(secret, body)) {
		return nil, ErrWebhookSignature
	}
	var ev WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("push: decode webhook: %w", err)
	}
	if strconv.FormatInt(ev.Timestamp, 10) != r.Header.Get(TimestampHeader) {
		return nil, ErrWebhookSignature
	}
	if d := time.Since(time.Unix(ev.Timestamp, 0)); d > WebhookTolerance || d < -WebhookTolerance {
		return nil, ErrWebhookSignature
	}
	return &ev, nil
}

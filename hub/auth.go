package hub

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// Signatures follow LeanCloud's IM "security and signatures" chapter:
// hex(HMAC-SHA1(masterKey, message)) where message is
//
//	login:        appid:clientid::timestamp:nonce
//	create:       appid:clientid:sorted_member_ids:timestamp:nonce
//	invite/kick:  appid:clientid:convid:sorted_member_ids:timestamp:nonce:action
//
// with member ids sorted ascending and joined by ':'. Timestamps may be in
// seconds or milliseconds; they must be within SignatureMaxAge of now, and
// a (clientid, nonce) pair is accepted once.

// Sign computes a LeanCloud signature of message with key. Host apps use it
// in their signature endpoint (what the SDK's signatureFactory calls).
func Sign(key, message string) string {
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(message))
	return hex.EncodeToString(m.Sum(nil))
}

// LoginSignatureMessage is the string signed for a session open.
func LoginSignatureMessage(appID, clientID string, timestamp int64, nonce string) string {
	return strings.Join([]string{appID, clientID, "", itoa(timestamp), nonce}, ":")
}

// ConversationSignatureMessage is the string signed for conversation
// operations: action "create" (convID empty), "invite" or "kick".
func ConversationSignatureMessage(appID, clientID, convID string, members []string, timestamp int64, nonce, action string) string {
	sorted := dedupSorted(members)
	parts := []string{appID, clientID}
	if action != "create" {
		parts = append(parts, convID)
	}
	parts = append(parts, strings.Join(sorted, ":"), itoa(timestamp), nonce)
	if action != "create" {
		parts = append(parts, action)
	}
	return strings.Join(parts, ":")
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// nonceCache remembers recently used nonces to refuse replays.
type nonceCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func newNonceCache() *nonceCache { return &nonceCache{seen: make(map[string]time.Time)} }

// use records key and reports whether it was unused. Entries older than ttl
// are forgotten (a replay that old fails the freshness check anyway).
func (n *nonceCache) use(key string, now time.Time, ttl time.Duration) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.seen) > 100_000 {
		for k, t := range n.seen {
			if now.Sub(t) > ttl {
				delete(n.seen, k)
			}
		}
	}
	if t, ok := n.seen[key]; ok && now.Sub(t) <= ttl {
		return false
	}
	n.seen[key] = now
	return true
}

func (h *Hub) fresh(ts int64) bool {
	now := h.now()
	t := time.Unix(ts, 0)
	if ts > 1e12 { // milliseconds
		t = time.UnixMilli(ts)
	}
	d := now.Sub(t)
	return d <= h.cfg.SignatureMaxAge && d >= -h.cfg.SignatureMaxAge
}

func (h *Hub) verifySignature(clientID, message, sig string, ts int64, nonce string, fail *realtime.Error) error {
	if sig == "" || nonce == "" || ts == 0 {
		return fail.WithDetail("signature, timestamp and nonce are required")
	}
	if !hmac.Equal([]byte(strings.ToLower(sig)), []byte(Sign(h.cfg.MasterKey, message))) {
		return fail
	}
	if !h.fresh(ts) {
		return fail.WithDetail("signature timestamp out of range")
	}
	if !h.nonces.use(clientID+"\x00"+nonce, h.now(), 2*h.cfg.SignatureMaxAge) {
		return fail.WithDetail("nonce already used")
	}
	return nil
}

// authenticate applies the login signature and the Authenticator.
func (h *Hub) authenticate(c *conn, req *wire.GenericCommand, clientID, tag, deviceID string, reconnect, tokenOK bool) error {
	sm := req.GetSessionMessage()
	if h.cfg.RequireLoginSignature && !tokenOK {
		msg := LoginSignatureMessage(req.GetAppId(), clientID, sm.GetT(), sm.GetN())
		if err := h.verifySignature(clientID, msg, sm.GetS(), sm.GetT(), sm.GetN(), realtime.ErrSignatureFailed); err != nil {
			return err
		}
	}
	if h.cfg.Authenticator == nil {
		return nil
	}
	lr := &LoginRequest{HTTP: c.req, AppID: req.GetAppId(), ClientID: clientID, Tag: tag, DeviceID: deviceID,
		Reconnect: reconnect, SessionTokenValid: tokenOK, Signature: sm.GetS(), Timestamp: sm.GetT(), Nonce: sm.GetN()}
	err := h.callHook(h.ctx, "Authenticator", func(ctx context.Context) error {
		return h.cfg.Authenticator.Authenticate(ctx, lr)
	})
	if err == nil {
		return nil
	}
	var e *realtime.Error
	if errors.As(err, &e) {
		return e
	}
	return realtime.ErrSignatureFailed.WithDetail("login refused")
}

// BlacklistSignatureMessage is the string signed for a conversation's
// blacklist change: action "conversation-block-clients" or
// "conversation-unblock-clients" (blacklistSignatureFactory).
func BlacklistSignatureMessage(appID, clientID, convID string, targets []string, timestamp int64, nonce, action string) string {
	return strings.Join([]string{appID, clientID, convID, strings.Join(dedupSorted(targets), ":"), itoa(timestamp), nonce, action}, ":")
}

// checkBlacklistSignature verifies a blacklist command's signature when the
// hub requires them.
func (h *Hub) checkBlacklistSignature(s *session, convID string, bm *wire.BlacklistCommand, block bool) error {
	if !h.cfg.RequireBlacklistSignature {
		return nil
	}
	action := "conversation-block-clients"
	if !block {
		action = "conversation-unblock-clients"
	}
	msg := BlacklistSignatureMessage(h.cfg.AppID, s.clientID, convID, bm.GetToPids(), bm.GetT(), bm.GetN(), action)
	return h.verifySignature(s.clientID, msg, bm.GetS(), bm.GetT(), bm.GetN(), realtime.ErrBlacklistSignature)
}

// checkConvSignature verifies a conversation operation's signature when
// the hub requires them.
func (h *Hub) checkConvSignature(s *session, convID string, members []string, action string, cm *wire.ConvCommand) error {
	if !h.cfg.RequireConversationSignature {
		return nil
	}
	if action == "create" {
		members = without(members, s.clientID)
		members = append(members, s.clientID)
	}
	msg := ConversationSignatureMessage(h.cfg.AppID, s.clientID, convID, members, cm.GetT(), cm.GetN(), action)
	if h.cfg.AppID == "" {
		return realtime.ErrConvSignatureFailed.WithDetail("the hub needs AppID to verify signatures")
	}
	return h.verifySignature(s.clientID, msg, cm.GetS(), cm.GetT(), cm.GetN(), realtime.ErrConvSignatureFailed)
}

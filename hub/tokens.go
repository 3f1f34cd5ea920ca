package hub

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"
)

// tokenSigner issues and verifies stateless session tokens: an HMAC over
// the client id, tag, device id and expiry.
type tokenSigner struct{ key []byte }

type sessionToken struct {
	Client string `json:"c"`
	Tag    string `json:"t,omitempty"`
	Device string `json:"d,omitempty"`
	Expiry int64  `json:"e"`
	// Issued is when the token was issued (Unix microseconds): tokens
	// issued before a client's revocation time are refused.
	Issued int64 `json:"i,omitempty"`
}

var errBadToken = errors.New("bad session token")

func (t tokenSigner) mac(payload string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

func (t tokenSigner) issue(client, tag, device string, now, expiry time.Time) string {
	b, _ := json.Marshal(sessionToken{Client: client, Tag: tag, Device: device, Expiry: expiry.Unix(), Issued: now.UnixMicro()})
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + t.mac(payload)
}

func (t tokenSigner) verify(token, client string, now time.Time) (*sessionToken, error) {
	payload, mac, ok := strings.Cut(token, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(t.mac(payload))) {
		return nil, errBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, errBadToken
	}
	var st sessionToken
	if json.Unmarshal(b, &st) != nil || st.Client != client || now.Unix() > st.Expiry {
		return nil, errBadToken
	}
	return &st, nil
}

func deriveKey(secret, purpose string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Revocation: logging out, being kicked (a tag conflict, Hub.Logout) void
// the session tokens of that device (or of every device of the client),
// issued before that moment, on every node and after restarts: the store
// keeps the revocations (Store.RevokeSessions), each hub keeps those
// younger than the token lifetime in memory (loaded at start), so checking
// a token costs no store read.

type revocations struct {
	mu sync.RWMutex
	m  map[string]map[string]int64 // client -> device ("" every device) -> µs
}

func (r *revocations) add(client, device string, atUs int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]map[string]int64{}
	}
	d := r.m[client]
	if d == nil {
		d = map[string]int64{}
		r.m[client] = d
	}
	d[device] = max(d[device], atUs)
}

// voids reports whether a revocation covers tok.
func (r *revocations) voids(tok *sessionToken) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d := r.m[tok.Client]
	if d == nil {
		return false
	}
	// Strictly before (microseconds): the token a device gets right after
	// kicking an older one with its tag is issued after the kick.
	if at, ok := d[""]; ok && tok.Issued < at {
		return true
	}
	at, ok := d[deviceKey(tok.Device, tok.Tag)]
	return ok && tok.Issued < at
}

// forgetBefore drops revocations older than a token can live.
func (r *revocations) forgetBefore(us int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c, d := range r.m {
		for dev, at := range d {
			if at < us {
				delete(d, dev)
			}
		}
		if len(d) == 0 {
			delete(r.m, c)
		}
	}
}

// deviceKey names the device a token belongs to: the SDK's device id, else
// its tag, else "" (which revokes every device of the client).
func deviceKey(deviceID, tag string) string {
	switch {
	case deviceID != "":
		return deviceID
	case tag != "":
		return "tag:" + tag
	}
	return ""
}

// verifyToken checks a session token of client: signature, expiry,
// revocation.
func (h *Hub) verifyToken(token, client string) (*sessionToken, error) {
	tok, err := h.tokens.verify(token, client, h.now())
	if err != nil {
		return nil, err
	}
	if h.revoked.voids(tok) {
		return nil, errBadToken
	}
	return tok, nil
}

// revoke voids the tokens of client's device (all devices with device
// "") issued until now, in the store and in memory.
func (h *Hub) revoke(ctx context.Context, client, device string) error {
	now := h.now()
	h.revoked.add(client, device, now.UnixMicro())
	if err := h.store.RevokeSessions(ctx, client, device, now); err != nil {
		return err
	}
	if h.cl != nil {
		h.cl.publishRevoke(client, device, now.UnixMicro())
	}
	return nil
}

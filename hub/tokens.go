package hub

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
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
	// Issued is when the token was issued (Unix ms): tokens issued before
	// a client's revocation time are refused.
	Issued int64 `json:"i,omitempty"`
}

var errBadToken = errors.New("bad session token")

func (t tokenSigner) mac(payload string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

func (t tokenSigner) issue(client, tag, device string, now, expiry time.Time) string {
	b, _ := json.Marshal(sessionToken{Client: client, Tag: tag, Device: device, Expiry: expiry.Unix(), Issued: now.UnixMilli()})
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

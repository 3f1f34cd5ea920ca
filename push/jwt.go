package push

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
)

// signJWT returns header.claims.signature with the signature made by sign
// over the SHA-256 of the signing input. Only FCM's RS256 assertion still
// uses it; APNs tokens are signed with golang-jwt.
func signJWT(header, claims any, sign func(digest []byte) ([]byte, error)) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	digest := sha256.Sum256([]byte(input))
	sig, err := sign(digest[:])
	if err != nil {
		return "", err
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// rs256 signs a digest with RSASSA-PKCS1-v1_5 SHA-256.
func rs256(key *rsa.PrivateKey) func([]byte) ([]byte, error) {
	return func(digest []byte) ([]byte, error) {
		return rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest)
	}
}

package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	realtime "github.com/leanhub/realtime"
)

// The REST calls the official SDKs make besides the router: the reconnect
// notifications (routes.go), push devices (devices.go), the login signature
// of createIMClient(AV.User) and the member roles of getAllMemberInfo.
// They take the app key (X-LC-Id, X-LC-Key) like LeanCloud's API; those that
// act for a client also take its session token (X-LC-IM-Session-Token).

// restError answers a REST call with LeanCloud's error body.
func restError(w http.ResponseWriter, status int, err error) {
	e := realtime.AsError(err)
	body := map[string]any{"code": e.Code, "error": e.Reason}
	if e.Detail != "" {
		body["error"] = e.Reason + ": " + e.Detail
	}
	writeJSON(w, status, body)
}

// serveSign answers POST /1.1/rtm/sign {"session_token"}: a login
// signature {signature, timestamp, nonce, client_id} for the client id
// Config.UserResolver gives the token.
func (h *Hub) serveSign(w http.ResponseWriter, r *http.Request) {
	if !h.restAuthorized(w, r) {
		return
	}
	if h.cfg.UserResolver == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"code": 404, "error": "createIMClient(AV.User) needs hub.Config.UserResolver"})
		return
	}
	var body struct {
		SessionToken string `json:"session_token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10)).Decode(&body); err != nil || body.SessionToken == "" {
		restError(w, http.StatusBadRequest, realtime.ErrInvalidCommand.WithDetail("body must be JSON {session_token}"))
		return
	}
	var clientID string
	err := h.callHook(r.Context(), "UserResolver", func(ctx context.Context) error {
		var err error
		clientID, err = h.cfg.UserResolver.ResolveUser(ctx, body.SessionToken)
		return err
	})
	if err == nil && !validClientID(clientID) {
		err = realtime.ErrInvalidLogin.WithDetail("the resolver gave an invalid client id")
	}
	if err != nil {
		var e *realtime.Error
		if !errors.As(err, &e) {
			h.log.Warn("user resolver failed", "err", err)
			err = realtime.ErrSignatureFailed.WithDetail("session token refused")
		}
		restError(w, http.StatusUnauthorized, err)
		return
	}
	ts := h.nowMs()
	var n [12]byte
	_, _ = rand.Read(n[:])
	nonce := hex.EncodeToString(n[:])
	key := h.cfg.MasterKey
	if key == "" {
		// Signatures are not checked without a master key; the SDK still
		// wants one.
		key = string(h.tokens.key)
	}
	appID := h.cfg.AppID
	if appID == "" {
		appID = r.Header.Get("X-LC-Id")
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"signature": Sign(key, LoginSignatureMessage(appID, clientID, ts, nonce)),
		"timestamp": ts, "nonce": nonce, "client_id": clientID,
	})
}

// clientFromSessionToken returns the client id whose session token the
// request carries in X-LC-IM-Session-Token, checking it is the client_id
// asked for.
func (h *Hub) clientFromSessionToken(r *http.Request, clientID string) (string, error) {
	tok, err := h.verifyToken(r.Header.Get("X-LC-IM-Session-Token"), clientID)
	if err != nil {
		return "", realtime.ErrSessionTokenExpired
	}
	return tok.Client, nil
}

// memberInfoID is the objectId of a member's role record: stable, derived
// from the conversation and the client.
func memberInfoID(convID, clientID string) string {
	sum := sha256.Sum256([]byte(convID + "\x00" + clientID))
	return hex.EncodeToString(sum[:12])
}

// serveMemberInfo answers GET /1.1/classes/_ConversationMemberInfo
// (conversation.getAllMemberInfo): the members of a conversation with a
// role other than Member, for a member of it. The JS SDK asks
// ?client_id=..&where={"cid":".."}; other SDKs send cid=.. directly.
func (h *Hub) serveMemberInfo(w http.ResponseWriter, r *http.Request) {
	if !h.restAuthorized(w, r) {
		return
	}
	q := r.URL.Query()
	client, err := h.clientFromSessionToken(r, q.Get("client_id"))
	if err != nil {
		restError(w, http.StatusUnauthorized, err)
		return
	}
	convID := q.Get("cid")
	if where := q.Get("where"); where != "" {
		var wq struct {
			Cid string `json:"cid"`
		}
		if json.Unmarshal([]byte(where), &wq) != nil {
			restError(w, http.StatusBadRequest, realtime.ErrInvalidCommand.WithDetail("where must be {\"cid\": ...}"))
			return
		}
		convID = wq.Cid
	}
	if convID == "" {
		restError(w, http.StatusBadRequest, realtime.ErrInvalidCommand.WithDetail("cid is required"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	_, snap, err := h.eng.snapshot(ctx, convID)
	if err != nil {
		restError(w, http.StatusNotFound, err)
		return
	}
	if !snap.isMember(client) {
		restError(w, http.StatusForbidden, realtime.ErrConvMembershipNeeded)
		return
	}
	members, err := h.members(ctx, convID)
	if err != nil {
		restError(w, http.StatusInternalServerError, err)
		return
	}
	results := []map[string]any{}
	for _, m := range members {
		if m.Role == realtime.RoleMember || m.Role == "" {
			continue
		}
		at := isoTime(m.JoinedAt)
		if m.JoinedAt.IsZero() {
			at = isoTime(time.UnixMilli(0))
		}
		results = append(results, map[string]any{
			"objectId": memberInfoID(convID, m.ClientID), "cid": convID, "clientId": m.ClientID,
			"role": string(m.Role), "createdAt": at, "updatedAt": at,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

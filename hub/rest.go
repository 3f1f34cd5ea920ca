package hub

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	realtime "github.com/leanhub/realtime"
)

// LeanCloud's IM REST API v2, for the application's backend: the hub's
// mount prefix + /1.2/rtm/... (conversations, chatrooms,
// service-conversations, clients, all-conversations, messages), with
// LeanCloud's request and response shapes. Every call needs the master
// key (X-LC-Key "{key},master", or X-LC-Sign "{md5(timestamp+key)},
// {timestamp},master"); without Config.MasterKey the API answers 401.
//
// Handlers only translate: every change goes through the engine
// operation the SDKs' commands and the Go API use (same checks, hooks,
// pushes to online members, cache updates, other nodes told), never to
// the store directly. The application acts as itself (actor.api): member
// policies do not apply, as on LeanCloud, where the master key may do
// anything.

// restBodyMax bounds a REST request body: a message is 5 KiB, a member
// list 20 to a few thousand ids.
const restBodyMax = 1 << 20

// restErr is a REST API error of its own: an HTTP status and LeanCloud's body.
type restErr struct {
	status int
	code   int
	msg    string
}

var (
	errRESTUnauthorized = &restErr{http.StatusUnauthorized, 401, "Unauthorized."}
	errRESTRateLimited  = &restErr{http.StatusTooManyRequests, 429, "Too many requests."}
	errRESTNotFound     = &restErr{http.StatusNotFound, 404, "Not found."}
)

func (e *restErr) Error() string { return e.msg }

// badRequest is a malformed request: LeanCloud's code 1 family is not
// documented for this API, so the body carries this project's
// invalid-command code (4201) with what is wrong.
func badRequest(format string, args ...any) error {
	return realtime.ErrInvalidCommand.WithDetail(format, args...)
}

// restStatus is the HTTP status of a realtime error.
func restStatus(e *realtime.Error) int {
	switch e.Code {
	case realtime.CodeConvNotFound, realtime.CodeMessageNotFound, realtime.CodeTempConvExpired:
		return http.StatusNotFound
	case realtime.CodeInternal:
		return http.StatusInternalServerError
	case realtime.CodeAppNotAvailable:
		return http.StatusServiceUnavailable
	case realtime.CodeMessageQuotaExceeded:
		return http.StatusTooManyRequests
	case realtime.CodeConvRejectedByApp, realtime.CodeMessageRejectedByApp, realtime.CodeMessageUpdateRejected,
		realtime.CodeConvNotAllowed, realtime.CodeConvUpdateRejected, realtime.CodeConvUnauthorized,
		realtime.CodeBlockedByConv:
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// restFail answers a failed call. Internal errors are logged, not sent.
func (h *Hub) restFail(w http.ResponseWriter, r *http.Request, err error) {
	var re *restErr
	if errors.As(err, &re) {
		writeJSON(w, re.status, map[string]any{"code": re.code, "error": re.msg})
		return
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = realtime.ErrInternal.WithDetail("timed out")
	}
	e := realtime.AsError(err)
	if e == realtime.ErrInternal {
		h.log.Error("rest api", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	restError(w, restStatus(e), e)
}

// restRoutes mounts the API under /1.2/rtm.
func (h *Hub) restRoutes(r chi.Router) {
	r.Use(h.restAuth)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { h.restFail(w, r, errRESTNotFound) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"code": 405, "error": "Method not allowed."})
	})
	for _, k := range []convKind{kindConversation, kindChatroom, kindService} {
		r.Route("/"+k.path(), func(r chi.Router) {
			r.Post("/", h.restHandler(k.create))
			r.Get("/", h.restHandler(k.query))
			r.Route("/{cid}", func(r chi.Router) {
				r.Get("/", h.restHandler(restGetConv))
				r.Put("/", h.restHandler(restUpdateConv))
				r.Delete("/", h.restHandler(restDeleteConv))
				r.Post("/messages/{mid}/recall", h.restHandler(restRecall))
				r.Put("/messages/{mid}/recall", h.restHandler(restRecall))
				r.Put("/messages/{mid}", h.restHandler(restEdit))
				r.Delete("/messages/{mid}", h.restHandler(restDeleteMessage))
				r.Get("/messages", h.restHandler(restHistory))
				r.Post("/mutes", h.restHandler(restMute(true)))
				r.Delete("/mutes", h.restHandler(restMute(false)))
				r.Get("/mutes", h.restHandler(restListMutes))
				r.Post("/temporary-silenceds", h.restHandler(restTempSilence(true)))
				r.Delete("/temporary-silenceds", h.restHandler(restTempSilence(false)))
				r.Post("/permanent-silenceds", h.restHandler(restPermSilence(true)))
				r.Delete("/permanent-silenceds", h.restHandler(restPermSilence(false)))
				r.Get("/permanent-silenceds", h.restHandler(restListSilenced))
				r.Post("/blacklists", h.restHandler(restBlock(true)))
				r.Delete("/blacklists", h.restHandler(restBlock(false)))
				r.Get("/blacklists", h.restHandler(restListBlocked))
				r.Post("/member-infos", h.restHandler(restSetRole))
				r.Put("/member-infos/{info}", h.restHandler(restSetRole))
				r.Delete("/member-infos/{info}", h.restHandler(restClearRole))
				r.Get("/member-infos", h.restHandler(restListRoles))
				switch k {
				case kindService:
					r.Post("/messages", h.restHandler(restSendService))
					r.Post("/broadcasts", h.restHandler(restBroadcast))
					r.Post("/subscribers", h.restHandler(restSubscribe))
					r.Delete("/subscribers/{client}", h.restHandler(restUnsubscribe))
					r.Get("/subscribers", h.restHandler(restListSubscribers))
					r.Get("/subscribers/count", h.restHandler(restCountSubscribers))
					r.Get("/subscribers/{client}/messages", h.restHandler(restSubscriberHistory))
					r.Delete("/subscribers/{client}/messages/{mid}", h.restHandler(restDeleteMessage))
				case kindChatroom:
					r.Post("/messages", h.restHandler(restSend))
					r.Get("/members", h.restHandler(restRoomMembers))
					r.Get("/members/online-count", h.restHandler(restRoomCount))
				default:
					r.Post("/messages", h.restHandler(restSend))
					r.Post("/members", h.restHandler(restMembers(true)))
					r.Delete("/members", h.restHandler(restMembers(false)))
					r.Get("/members", h.restHandler(restListMembers))
				}
			})
		})
	}
	r.Get("/all-conversations", h.restHandler(kindAny.query))
	r.Get("/messages", h.restHandler(restAppHistory))
	r.Post("/clients/check-online", h.restHandler(restCheckOnline))
	r.Get("/clients/{client}/unread-count", h.restHandler(restUnreadCount))
	r.Post("/clients/{client}/kick", h.restHandler(restKick))
	r.Get("/clients/{client}/messages", h.restHandler(restClientHistory))
	r.Get("/clients/{client}/service-conversations", h.restHandler(restClientServices))
}

// restHandler adapts a REST operation: it gets a request context bounded
// by storeTimeout and returns the answer's body (status 200) or an error.
func (h *Hub) restHandler(op func(h *Hub, rc *restCall) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
		defer cancel()
		rc := &restCall{ctx: ctx, r: r, w: w}
		v, err := op(h, rc)
		if err != nil {
			h.restFail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// restCall is one REST request being served.
type restCall struct {
	ctx context.Context
	r   *http.Request
	w   http.ResponseWriter
}

func (rc *restCall) param(name string) string { return chi.URLParam(rc.r, name) }

func (rc *restCall) query(name string) string { return rc.r.URL.Query().Get(name) }

// decode reads the JSON body into v; an empty body leaves v as it is.
func (rc *restCall) decode(v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(rc.w, rc.r.Body, restBodyMax))
	if err != nil {
		return badRequest("request body over %d bytes or unreadable", restBodyMax)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badRequest("body must be JSON: %v", jsonErrorText(err))
	}
	return nil
}

// jsonErrorText is a JSON decoding error without Go type names.
func jsonErrorText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return "wrong type for " + te.Field
		}
		return "wrong type"
	}
	return "malformed JSON"
}

// queryInt reads an integer query parameter (def when absent).
func (rc *restCall) queryInt(name string, def int64) (int64, error) {
	v := rc.query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, badRequest("%s must be an integer", name)
	}
	return n, nil
}

// queryBool reads a boolean query parameter ("true"/"false", "1"/"0").
func (rc *restCall) queryBool(name string) (bool, error) {
	v := rc.query(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("%s must be true or false", name)
	}
	return b, nil
}

// restAuth admits calls with the master key: X-LC-Id equal to the app id
// and X-LC-Key "{masterkey},master" or X-LC-Sign
// "{md5(timestamp+masterkey)},{timestamp},master". The app key alone is
// refused: everything here acts as the application.
func (h *Hub) restAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.restMaster(r) {
			h.restFail(w, r, errRESTUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *Hub) restMaster(r *http.Request) bool {
	key := h.cfg.MasterKey
	if key == "" {
		return false
	}
	id := r.Header.Get("X-LC-Id")
	if id == "" || h.cfg.AppID != "" && !equalSecret(id, h.cfg.AppID) {
		return false
	}
	if k := r.Header.Get("X-LC-Key"); k != "" {
		given, ok := strings.CutSuffix(k, ",master")
		return ok && equalSecret(given, key)
	}
	return h.restSignOK(r.Header.Get("X-LC-Sign"), key)
}

// restSignOK checks X-LC-Sign: "{sign},{timestamp},master" with sign the
// hex md5 of timestamp+masterkey. The timestamp (ms) must be within
// Config.SignatureMaxAge of now, so a captured header stops working.
func (h *Hub) restSignOK(header, key string) bool {
	parts := strings.Split(header, ",")
	if len(parts) != 3 || strings.TrimSpace(parts[2]) != "master" {
		return false
	}
	sign, tsText := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1])
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || !h.fresh(ts) {
		return false
	}
	sum := md5.Sum([]byte(tsText + key))
	return equalSecret(strings.ToLower(sign), hex.EncodeToString(sum[:]))
}

func equalSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// restBucket is the app's one bucket for message calls.
type restBucket struct {
	mu sync.Mutex
	b  bucket
}

// allowMessageCall takes a token of the app's REST message quota.
func (h *Hub) allowMessageCall() error {
	h.restQuota.mu.Lock()
	defer h.restQuota.mu.Unlock()
	if !h.restQuota.b.take(h.cfg.Limits.RESTMessageRate, h.now(), 1) {
		return errRESTRateLimited
	}
	return nil
}

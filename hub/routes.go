package hub

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/go-chi/chi/v5"
)

func (h *Hub) routes() *chi.Mux {
	r := chi.NewRouter()
	r.Use(h.websocketFirst, h.cors)
	r.Get("/v1/route", h.serveRoute)
	r.Get("/1.1/rtm/notifications", h.serveNotifications)
	r.Post("/1.1/rtm/devices", h.serveRegisterDevice)
	r.Post("/1.1/rtm/sign", h.serveSign)
	r.Get("/1.1/classes/_ConversationMemberInfo", h.serveMemberInfo)
	r.Delete("/1.1/rtm/devices", h.serveUnregisterDevice)
	r.Route("/1.2/rtm", h.restRoutes)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"code": 404, "error": "not found"})
	})
	return r
}

// serveUnmounted serves a request that reached the hub without chi.Mount
// or http.StripPrefix (mux.Handle("/im/", h) in net/http): the hub's route
// is the longest suffix of the path that names one, so the hub works
// under any prefix.
func (h *Hub) serveUnmounted(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if !h.mux.Match(chi.NewRouteContext(), r.Method, p) {
		for i := 1; i < len(p); i++ {
			if p[i] == '/' && h.mux.Match(chi.NewRouteContext(), r.Method, p[i:]) {
				r2 := r.Clone(r.Context())
				r2.URL.Path, r2.URL.RawPath = p[i:], ""
				r = r2
				break
			}
		}
	}
	h.mux.ServeHTTP(w, r)
}

// websocketFirst sends every websocket upgrade to the socket handler,
// whatever its path: SDKs given a websocket URL by configuration
// (RTMServers) connect to it as is.
func (h *Hub) websocketFirst(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			h.serveWebsocket(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cors answers browsers' preflights and tags answers for allowed origins.
func (h *Hub) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && h.originAllowed(r) {
			hd := w.Header()
			hd.Set("Access-Control-Allow-Origin", origin)
			hd.Add("Vary", "Origin")
			if r.Method == http.MethodOptions {
				hd.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
				hd.Set("Access-Control-Allow-Headers",
					"Content-Type, X-LC-Id, X-LC-Key, X-LC-IM-Session-Token, X-LC-Sign, X-LC-Session, X-LC-UA, X-LC-Prod")
				hd.Set("Access-Control-Max-Age", "86400")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// originAllowed applies AllowedOrigins to a request's Origin header.
func (h *Hub) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || h.cfg.AllowedOrigins == nil {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, p := range h.cfg.AllowedOrigins {
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(u.Host)); ok {
			return true
		}
	}
	return false
}

// mountPrefix recovers the prefix the hub is mounted under from the
// original request URI (chi.Mount and http.StripPrefix both keep it there).
func mountPrefix(r *http.Request, suffix string) string {
	p := r.URL.Path
	if r.RequestURI != "" {
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			p = u.Path
		}
	}
	return strings.TrimSuffix(p, suffix)
}

// websocketURL is where the router sends clients.
func (h *Hub) websocketURL(r *http.Request) string {
	if h.cfg.PublicURL != "" {
		u, err := url.Parse(h.cfg.PublicURL)
		if err == nil {
			switch u.Scheme {
			case "https":
				u.Scheme = "wss"
			case "http":
				u.Scheme = "ws"
			}
			u.Path = strings.TrimSuffix(u.Path, "/") + "/ws"
			return u.String()
		}
	}
	scheme := "ws"
	if r.TLS != nil {
		scheme = "wss"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		if strings.EqualFold(strings.TrimSpace(strings.Split(p, ",")[0]), "https") {
			scheme = "wss"
		} else {
			scheme = "ws"
		}
	}
	host := r.Host
	if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
		host = strings.TrimSpace(strings.Split(fh, ",")[0])
	}
	return scheme + "://" + host + mountPrefix(r, "/v1/route") + "/ws"
}

// serveRoute answers the SDK's router request (GET /v1/route?appId=..).
func (h *Hub) serveRoute(w http.ResponseWriter, r *http.Request) {
	if id := r.URL.Query().Get("appId"); h.cfg.AppID != "" && id != "" && id != h.cfg.AppID {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": 4100, "error": "APP_NOT_AVAILABLE"})
		return
	}
	ws := h.websocketURL(r)
	writeJSON(w, http.StatusOK, map[string]any{"server": ws, "secondary": ws, "ttl": 3600})
}

// serveNotifications answers the SDK's reconnect call
// (GET /1.1/rtm/notifications). Permanent notifications are not kept by this
// hub: unread state travels in the unread command after session open, so
// the answer is always empty.
func (h *Hub) serveNotifications(w http.ResponseWriter, r *http.Request) {
	if !h.restAuthorized(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"notifications": []any{}, "hasMore": false})
}

// restAuthorized checks X-LC-Id and X-LC-Key when the hub has them.
func (h *Hub) restAuthorized(w http.ResponseWriter, r *http.Request) bool {
	if id := r.Header.Get("X-LC-Id"); h.cfg.AppID != "" && id != "" && id != h.cfg.AppID {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 401, "error": "Unauthorized."})
		return false
	}
	if h.cfg.AppKey != "" {
		key := r.Header.Get("X-LC-Key")
		key = strings.TrimSuffix(key, ",master")
		if key != h.cfg.AppKey && (h.cfg.MasterKey == "" || key != h.cfg.MasterKey) {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 401, "error": "Unauthorized."})
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

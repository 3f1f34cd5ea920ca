package hub

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	realtime "github.com/leanhub/realtime"
)

// Push devices: tokens bound at login by mobile SDKs (configBitmap bit 4),
// through the Go API or through POST {prefix}/1.1/rtm/devices.

// bindDevice binds the push token a mobile SDK sent at session open.
func (h *Hub) bindDevice(s *session) {
	if h.devices == nil {
		return
	}
	platform := realtime.PlatformIOS
	if len(s.token) > 100 || containsAny(s.token, ":-_") {
		platform = realtime.PlatformAndroid // FCM tokens are long and carry ':' '-' '_'
	}
	ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
	defer cancel()
	if err := h.devices.RegisterDevice(ctx, realtime.Device{ClientID: s.clientID, Platform: platform, Token: s.token, UpdatedAt: h.now()}); err != nil {
		h.log.Error("bind device", append(s.logAttrs(), "err", err)...)
	}
}

// unbindDevice removes the token bound at open, on logout.
func (h *Hub) unbindDevice(s *session) {
	if h.devices == nil || s.bitmap&bitAutoBindDevice == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
	defer cancel()
	for _, p := range []realtime.Platform{realtime.PlatformIOS, realtime.PlatformAndroid} {
		if err := h.devices.UnregisterDevice(ctx, p, s.token); err != nil {
			h.log.Error("unbind device", append(s.logAttrs(), "err", err)...)
		}
	}
}

func containsAny(s, chars string) bool {
	for _, c := range chars {
		for _, x := range s {
			if x == c {
				return true
			}
		}
	}
	return false
}

// RegisterDevice binds a push device to a client id (Go API).
func (h *Hub) RegisterDevice(ctx context.Context, d realtime.Device) error {
	if h.devices == nil {
		return errors.New("hub: no DeviceStore")
	}
	if !validClientID(d.ClientID) || d.Token == "" || d.Platform == "" {
		return realtime.ErrInvalidMessage.WithDetail("device needs clientId, platform and token")
	}
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = h.now()
	}
	return h.devices.RegisterDevice(ctx, d)
}

// UnregisterDevice removes a push device (Go API).
func (h *Hub) UnregisterDevice(ctx context.Context, platform realtime.Platform, token string) error {
	if h.devices == nil {
		return errors.New("hub: no DeviceStore")
	}
	return h.devices.UnregisterDevice(ctx, platform, token)
}

// ResetBadge sets a device's badge to zero, as apps do when opened.
func (h *Hub) ResetBadge(ctx context.Context, platform realtime.Platform, token string) error {
	if h.devices == nil {
		return errors.New("hub: no DeviceStore")
	}
	return h.devices.ResetBadge(ctx, platform, token)
}

type deviceRequest struct {
	ClientID string `json:"clientId"`
	Platform string `json:"platform"`
	Token    string `json:"token"`
	Topic    string `json:"topic"`
	Profile  string `json:"profile"`
}

// serveRegisterDevice: POST {prefix}/1.1/rtm/devices {clientId, platform,
// token, topic, profile}. It needs the X-LC-IM-Session-Token of a session of
// that client (or the master key in X-LC-Key).
func (h *Hub) serveRegisterDevice(w http.ResponseWriter, r *http.Request) {
	var d deviceRequest
	if !h.deviceRequest(w, r, &d) {
		return
	}
	err := h.RegisterDevice(r.Context(), realtime.Device{ClientID: d.ClientID, Platform: realtime.Platform(d.Platform),
		Token: d.Token, Topic: d.Topic, Profile: d.Profile})
	h.deviceAnswer(w, err)
}

// serveUnregisterDevice: DELETE {prefix}/1.1/rtm/devices with the same body.
func (h *Hub) serveUnregisterDevice(w http.ResponseWriter, r *http.Request) {
	var d deviceRequest
	if !h.deviceRequest(w, r, &d) {
		return
	}
	h.deviceAnswer(w, h.UnregisterDevice(r.Context(), realtime.Platform(d.Platform), d.Token))
}

func (h *Hub) deviceRequest(w http.ResponseWriter, r *http.Request, d *deviceRequest) bool {
	if !h.restAuthorized(w, r) {
		return false
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10)).Decode(d); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": realtime.CodeInvalidMessage, "error": "body must be JSON {clientId, platform, token}"})
		return false
	}
	master := h.cfg.MasterKey != "" && r.Header.Get("X-LC-Key") == h.cfg.MasterKey+",master"
	if !master {
		if _, err := h.verifyToken(r.Header.Get("X-LC-IM-Session-Token"), d.ClientID); err != nil {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"code": realtime.CodeSessionTokenExpired, "error": "X-LC-IM-Session-Token of this client required"})
			return false
		}
	}
	return true
}

func (h *Hub) deviceAnswer(w http.ResponseWriter, err error) {
	if err != nil {
		e := realtime.AsError(err)
		status := http.StatusBadRequest
		if e.Code == realtime.CodeInternal {
			status = http.StatusInternalServerError
			h.log.Error("device endpoint", "err", err)
		}
		writeJSON(w, status, map[string]any{"code": e.Code, "error": e.Reason, "detail": e.Detail})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

package push

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/leanhub/realtime"
)

// ErrPermanent is wrapped by pusher errors that retrying cannot fix (a
// payload the service refuses, a platform with no pusher): the Queue drops
// the notification without unregistering the device. Errors wrapping
// realtime.ErrBadDeviceToken are permanent too but also unregister the
// device. Every other error is retried.
var ErrPermanent = errors.New("push: permanent failure")

// Outcome classifies a push service's answer.
type Outcome int

const (
	Retryable Outcome = iota // worth trying again later
	Permanent                // drop the notification
	BadToken                 // drop it and unregister the device
)

func (o Outcome) String() string {
	switch o {
	case Permanent:
		return "permanent"
	case BadToken:
		return "bad token"
	}
	return "retryable"
}

// ProviderError is a refusal from a push service (APNs, FCM, a webhook).
// errors.Is(err, realtime.ErrBadDeviceToken) holds when Outcome is BadToken
// and errors.Is(err, ErrPermanent) when it is Permanent.
type ProviderError struct {
	Provider   string // "apns", "fcm", "webhook"
	StatusCode int    // HTTP status; 0 when no answer was received
	Reason     string // the service's reason (APNs reason, FCM error code, ...)
	Outcome    Outcome
	// RetryAfter is the service's Retry-After; 0 when it gave none.
	RetryAfter time.Duration
}

func (e *ProviderError) Error() string {
	reason := e.Reason
	if reason == "" {
		reason = http.StatusText(e.StatusCode)
	}
	if e.StatusCode == 0 {
		return fmt.Sprintf("push: %s: %s", e.Provider, reason)
	}
	return fmt.Sprintf("push: %s: %d %s", e.Provider, e.StatusCode, reason)
}

// Unwrap returns realtime.ErrBadDeviceToken or ErrPermanent according to
// Outcome, nil for a retryable error.
func (e *ProviderError) Unwrap() error {
	switch e.Outcome {
	case BadToken:
		return realtime.ErrBadDeviceToken
	case Permanent:
		return ErrPermanent
	}
	return nil
}

// retryAfter returns the delay a pusher error asks for, 0 if none.
func retryAfter(err error) time.Duration {
	var pe *ProviderError
	if errors.As(err, &pe) {
		return pe.RetryAfter
	}
	return 0
}

// parseRetryAfter reads a Retry-After header (seconds or an HTTP date).
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// statusOutcome is the default classification of an HTTP status: 429 and
// 5xx retry, other 4xx are permanent.
func statusOutcome(code int) Outcome {
	switch {
	case code == http.StatusTooManyRequests, code >= 500:
		return Retryable
	case code == http.StatusGone:
		return BadToken
	case code >= 400:
		return Permanent
	}
	return Retryable
}

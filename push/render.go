package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/leanhub/realtime"
)

// DefaultMaxPushDataSize is the largest pushData a sender may attach (4 KiB,
// the size of an APNs payload).
const DefaultMaxPushDataSize = 4096

// IncrementBadge is the badge value that stands for "the device's badge plus
// one". It is compared case-sensitively, as on LeanCloud.
const IncrementBadge = "Increment"

// Keys removed from every payload and returned beside it.
const (
	keyProfile = "_profile"
	keyTeamID  = "_apns_team_id"
	keyBadge   = "badge"
)

// Source says which of the three push contents a Rendered came from.
type Source int

const (
	SourceNone     Source = iota // no push
	SourceHook                   // the ReceiversOffline hook's PushMessage
	SourcePushData               // the sender's pushData
	SourceTemplate               // the static template
)

func (s Source) String() string {
	switch s {
	case SourceHook:
		return "hook"
	case SourcePushData:
		return "pushData"
	case SourceTemplate:
		return "template"
	}
	return "none"
}

// Template is the app's static push content: a JSON object whose string
// values may contain ${convId}, ${timestamp} (Unix seconds at which the push
// is triggered) and ${fromClientId}. Other ${...} sequences are left as they
// are (there is no escape syntax), so a template may carry a literal
// "${price}". Variables are only replaced inside string values, never in
// keys, and the substituted text is JSON-escaped by construction (the
// template is decoded, edited and encoded again).
type Template struct {
	raw string
}

// ParseTemplate checks that s is a JSON object and returns it as a
// Template. It is meant for configuration time: a bad template is an error
// there rather than a silent lack of pushes later.
func ParseTemplate(s string) (*Template, error) {
	if _, err := decodeObject([]byte(s)); err != nil {
		return nil, fmt.Errorf("push: template: %w", err)
	}
	return &Template{raw: s}, nil
}

// MustParseTemplate is ParseTemplate that panics on error, for templates
// written in the program.
func MustParseTemplate(s string) *Template {
	t, err := ParseTemplate(s)
	if err != nil {
		panic(err)
	}
	return t
}

// String returns the template's source.
func (t *Template) String() string { return t.raw }

// RenderInput holds the candidate push contents of one message, from the
// highest priority to the lowest, and the values the template may use.
type RenderInput struct {
	// PushMessage comes from realtime.ReceiversOfflineResult; nil when the
	// hook gave none. It must be a JSON object; its size is not limited
	// (the app wrote it).
	PushMessage json.RawMessage
	// PushData is the sender's pushData; nil when none. It must be a JSON
	// object of at most MaxPushDataSize bytes.
	PushData json.RawMessage
	// Template is the app's static content; nil when none is configured.
	Template *Template

	ConvID string    // ${convId}
	From   string    // ${fromClientId}
	Time   time.Time // ${timestamp}, in Unix seconds; zero means time.Now()

	// MaxPushDataSize bounds PushData; 0 means DefaultMaxPushDataSize.
	MaxPushDataSize int
}

// Rendered is the push content chosen for a message, before per-device
// badges are filled in.
type Rendered struct {
	Source Source
	// Payload is a JSON object without "_profile" and "_apns_team_id".
	// When IncrementBadge is true its "badge" is still "Increment": call
	// WithBadge per device.
	Payload json.RawMessage
	// Profile and TeamID are the removed "_profile" and "_apns_team_id"
	// (empty when absent or not strings).
	Profile string
	TeamID  string
	// IncrementBadge reports that badge was exactly "Increment".
	IncrementBadge bool
	// Skipped holds why higher-priority contents were passed over (each a
	// *realtime.Error with code 4410), for the caller to log. Nil when the
	// first present content was used.
	Skipped []error
}

// Render picks the push content of a message: the hook's PushMessage, else
// the sender's PushData, else the static Template. A content that is
// present but invalid (not a JSON object, PushData too large) is skipped
// with its error in Rendered.Skipped, and the next one is tried.
//
// When no content is usable Render returns (nil, nil) if nothing was given
// (no template configured and no pushData: no push is sent, as on LeanCloud,
// which pushed nothing for apps without a template), and (nil, err) joining
// the reasons if contents were given but all were invalid. Render does not
// read clocks other than for a zero in.Time and is safe for concurrent use.
func Render(in RenderInput) (*Rendered, error) {
	var skipped []error
	if in.PushMessage != nil {
		obj, err := decodeObject(in.PushMessage)
		if err == nil {
			return finish(SourceHook, obj, skipped)
		}
		skipped = append(skipped, realtime.ErrInvalidMessage.WithDetail("hook pushMessage: %v", err))
	}
	if in.PushData != nil {
		obj, err := checkPushData(in.PushData, in.MaxPushDataSize)
		if err == nil {
			return finish(SourcePushData, obj, skipped)
		}
		skipped = append(skipped, err)
	}
	if in.Template != nil {
		obj, err := decodeObject([]byte(in.Template.raw))
		if err == nil { // always, for a parsed template
			now := in.Time
			if now.IsZero() {
				now = time.Now()
			}
			vars := map[string]string{
				"convId":       in.ConvID,
				"timestamp":    strconv.FormatInt(now.Unix(), 10),
				"fromClientId": in.From,
			}
			return finish(SourceTemplate, substitute(obj, vars).(map[string]any), skipped)
		}
		skipped = append(skipped, fmt.Errorf("push: template: %w", err))
	}
	if len(skipped) > 0 {
		return nil, errors.Join(skipped...)
	}
	return nil, nil
}

// CheckPushData reports whether a sender's pushData is acceptable: a JSON
// object of at most max bytes (0 means DefaultMaxPushDataSize). The error is
// realtime.ErrInvalidMessage with a detail, fit to show the sender.
func CheckPushData(data json.RawMessage, max int) error {
	_, err := checkPushData(data, max)
	return err
}

func checkPushData(data json.RawMessage, max int) (map[string]any, error) {
	if max <= 0 {
		max = DefaultMaxPushDataSize
	}
	if len(data) > max {
		return nil, realtime.ErrInvalidMessage.WithDetail("pushData is %d bytes, over the limit of %d", len(data), max)
	}
	obj, err := decodeObject(data)
	if err != nil {
		return nil, realtime.ErrInvalidMessage.WithDetail("pushData: %v", err)
	}
	return obj, nil
}

func finish(src Source, obj map[string]any, skipped []error) (*Rendered, error) {
	r := &Rendered{Source: src, Skipped: skipped}
	if v, ok := obj[keyProfile]; ok {
		r.Profile, _ = v.(string)
		delete(obj, keyProfile)
	}
	if v, ok := obj[keyTeamID]; ok {
		r.TeamID, _ = v.(string)
		delete(obj, keyTeamID)
	}
	if b, ok := obj[keyBadge].(string); ok && b == IncrementBadge {
		r.IncrementBadge = true
	}
	p, err := encode(obj)
	if err != nil {
		return nil, err
	}
	r.Payload = p
	return r, nil
}

// WithBadge returns the payload for a device whose new badge is badge: a
// copy with "badge" set to that number when IncrementBadge is true, the
// shared Payload otherwise.
func (r *Rendered) WithBadge(badge int) json.RawMessage {
	if !r.IncrementBadge {
		return r.Payload
	}
	obj, err := decodeObject(r.Payload)
	if err != nil { // cannot happen: Payload was encoded by finish
		return r.Payload
	}
	obj[keyBadge] = badge
	p, err := encode(obj)
	if err != nil {
		return r.Payload
	}
	return p
}

// decodeObject decodes a JSON object, keeping numbers exact.
func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return obj, nil
}

// encode writes v as compact JSON without HTML escaping (payloads are not
// HTML). Object keys come out sorted.
func encode(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func substitute(v any, vars map[string]string) any {
	switch v := v.(type) {
	case string:
		return expand(v, vars)
	case map[string]any:
		for k, e := range v {
			v[k] = substitute(e, vars)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = substitute(e, vars)
		}
		return v
	}
	return v
}

// expand replaces the known ${name} in s and keeps unknown ones verbatim.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i+2:], '}')
		if j < 0 {
			break
		}
		name := s[i+2 : i+2+j]
		b.WriteString(s[:i])
		if val, ok := vars[name]; ok {
			b.WriteString(val)
		} else {
			b.WriteString(s[i : i+3+j])
		}
		s = s[i+3+j:]
	}
	b.WriteString(s)
	return b.String()
}

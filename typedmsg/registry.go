package typedmsg

import (
	"errors"
	"fmt"
	"sync"

	"github.com/leanhub/realtime"
)

// Registry knows the application's custom message types and checks bodies
// before the hub accepts them. The zero value is ready to use and knows only
// the built-in types; a nil *Registry validates like an empty one. It is safe
// for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	types map[Type]customType
}

type customType struct {
	name     string
	validate func(*Message) error
}

// Register declares the custom type t, named name in error details. validate,
// if not nil, checks every body of that type (see Validate); it runs
// concurrently and must not keep or change the message.
//
// Only positive types can be registered: negative ones are LeanCloud's and 0
// is no SDK's. Registering a type twice is an error, so that two parts of an
// application cannot silently disagree about a number.
func (r *Registry) Register(t Type, name string, validate func(*Message) error) error {
	if t <= 0 {
		return fmt.Errorf("typedmsg: cannot register type %d: custom types must be positive (negative types are reserved)", t)
	}
	if t > 1<<31-1 {
		return fmt.Errorf("typedmsg: cannot register type %d: out of the int32 range", t)
	}
	if name == "" {
		name = t.String()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.types[t]; ok {
		return fmt.Errorf("typedmsg: type %d is already registered as %q", t, old.name)
	}
	if r.types == nil {
		r.types = make(map[Type]customType)
	}
	r.types[t] = customType{name: name, validate: validate}
	return nil
}

// Name returns the name a custom type was registered with, or the type's
// String for built-in types; ok is false for types neither built in nor
// registered.
func (r *Registry) Name(t Type) (name string, ok bool) {
	if isBuiltin(t) {
		return t.String(), true
	}
	c, ok := r.lookup(t)
	return c.name, ok
}

func (r *Registry) lookup(t Type) (customType, bool) {
	if r == nil {
		return customType{}, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.types[t]
	return c, ok
}

func isBuiltin(t Type) bool {
	return (t <= Text && t >= File) || t == Recalled
}

// Validate checks a message body a client sent. It returns nil for:
//
//   - bodies that are not typed (plain text, other JSON; see TypeOf);
//   - typed bodies of unknown types (neither built in nor registered), which
//     are not decoded at all;
//   - well-formed built-in and registered bodies.
//
// Built-in bodies must decode (see Decode) and have the fields their type
// needs: image, audio, video and file messages an "_lcfile" with a "url"
// (and no negative metaData size, width, height or duration);
// location messages an "_lcloc" with latitude in [-90, 90] and longitude in
// [-180, 180]. Registered bodies must decode and pass their validator.
//
// Errors are *realtime.Error values the hub can send to the client:
// realtime.ErrInvalidMessage with a detail, realtime.ErrMessageTooLarge over
// MaxSize, or whatever *realtime.Error a validator returned. Other validator
// errors become realtime.ErrInvalidMessage with the type's name and the
// error's text as detail, so validators should word them for the client.
func (r *Registry) Validate(data string) error {
	t, ok := TypeOf(data)
	if !ok {
		return nil
	}
	custom, registered := r.lookup(t)
	if !registered && !isBuiltin(t) {
		return nil
	}
	m, err := Decode(data)
	if err != nil {
		return err
	}
	if registered {
		if custom.validate == nil {
			return nil
		}
		if err := custom.validate(m); err != nil {
			var e *realtime.Error
			if errors.As(err, &e) {
				return e
			}
			return invalid("%s message: %v", custom.name, err)
		}
		return nil
	}
	return checkBuiltin(m)
}

// checkBuiltin checks the fields a built-in type needs beyond what Decode
// checked.
func checkBuiltin(m *Message) error {
	switch m.Type {
	case Image, Audio, Video, File:
		if m.File == nil || m.File.URL == "" {
			return invalid("%s message needs _lcfile.url", m.Type)
		}
		if meta := m.File.Meta; meta != nil &&
			(meta.Size < 0 || meta.Width < 0 || meta.Height < 0 || meta.Duration < 0) {
			return invalid("_lcfile.metaData sizes and duration must not be negative")
		}
	case Location:
		if m.Location == nil {
			return invalid("location message needs _lcloc")
		}
		if lat := m.Location.Latitude; lat < -90 || lat > 90 {
			return invalid("_lcloc.latitude %g is out of [-90, 90]", lat)
		}
		if lng := m.Location.Longitude; lng < -180 || lng > 180 {
			return invalid("_lcloc.longitude %g is out of [-180, 180]", lng)
		}
	}
	return nil
}

package typedmsg

import (
	"encoding/json"
	"strconv"
)

// Type is a typed message's "_lctype". Negative values are reserved for
// LeanCloud's built-in types; applications pick positive ones.
type Type int

// LeanCloud's built-in types.
const (
	Text     Type = -1
	Image    Type = -2
	Audio    Type = -3
	Video    Type = -4
	Location Type = -5
	File     Type = -6
	Recalled Type = -127 // what a recalled message's body becomes
)

// String returns the built-in type's name ("text", "image", ...) or
// "type(N)" for others.
func (t Type) String() string {
	switch t {
	case Text:
		return "text"
	case Image:
		return "image"
	case Audio:
		return "audio"
	case Video:
		return "video"
	case Location:
		return "location"
	case File:
		return "file"
	case Recalled:
		return "recalled"
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Message is a decoded typed-message body of any type. Fields absent from
// the body are nil (or zero, for FileMeta's fields).
type Message struct {
	Type Type // "_lctype"
	// Text is "_lctext"; nil when absent. It is a pointer because the JS
	// SDK's TextMessage sends "_lctext":"" by default, which must survive a
	// round trip, while other types usually send no text at all.
	Text *string
	// Attrs is "_lcattrs", the application's attributes: a compact JSON
	// object, nil when absent. Unmarshal it into the application's own type.
	Attrs    json.RawMessage
	File     *FileInfo // "_lcfile": image, audio, video and file messages
	Location *GeoPoint // "_lcloc": location messages
	// Extra holds the other top-level fields (custom message fields such as
	// the JS SDK's messageField('op')), as compact JSON values by name.
	// Keys must not be one of the fields above.
	Extra map[string]json.RawMessage
}

// FileInfo is "_lcfile": a file stored by the LeanCloud storage service (or
// anywhere else the URL points).
type FileInfo struct {
	URL   string    // "url"; omitted when empty
	ObjID string    // "objId", the storage object id; omitted when empty
	Meta  *FileMeta // "metaData"; nil when absent
	// Extra holds other fields of "_lcfile", as compact JSON values.
	Extra map[string]json.RawMessage
}

// FileMeta is "_lcfile.metaData". Zero values are absent and omitted.
type FileMeta struct {
	Name   string // "name", the file name
	Format string // "format", e.g. "png" or "mp4"
	Size   int64  // "size" in bytes
	// Width and Height are in pixels (images, videos). They are float64
	// because some SDKs send fractional sizes.
	Width    float64 // "width"
	Height   float64 // "height"
	Duration float64 // "duration" in seconds (audio, video)
	// Extra holds other metaData fields (the JS storage SDK adds "owner",
	// Android adds "_checksum"...), as compact JSON values.
	Extra map[string]json.RawMessage
}

// GeoPoint is "_lcloc". Both coordinates are always encoded, zero included.
type GeoPoint struct {
	Latitude  float64 // "latitude", -90..90
	Longitude float64 // "longitude", -180..180
	// Extra holds other fields of "_lcloc", as compact JSON values.
	Extra map[string]json.RawMessage
}

// SetText sets the message's text ("_lctext").
func (m *Message) SetText(text string) { m.Text = &text }

// NewText returns a text message, as the SDKs' TextMessage sends it.
func NewText(text string) *Message {
	return &Message{Type: Text, Text: &text}
}

// NewImage returns an image message for the image at url; width and height
// are in pixels, 0 when unknown.
func NewImage(url string, width, height float64) *Message {
	m := &Message{Type: Image, File: &FileInfo{URL: url}}
	if width != 0 || height != 0 {
		m.File.Meta = &FileMeta{Width: width, Height: height}
	}
	return m
}

// NewAudio returns an audio message for the recording at url; duration is in
// seconds, 0 when unknown.
func NewAudio(url string, duration float64) *Message {
	return newMedia(Audio, url, duration)
}

// NewVideo returns a video message for the video at url; duration is in
// seconds, 0 when unknown.
func NewVideo(url string, duration float64) *Message {
	return newMedia(Video, url, duration)
}

func newMedia(t Type, url string, duration float64) *Message {
	m := &Message{Type: t, File: &FileInfo{URL: url}}
	if duration != 0 {
		m.File.Meta = &FileMeta{Duration: duration}
	}
	return m
}

// NewFile returns a file message for the file at url; name and size (in
// bytes) are omitted when empty or 0.
func NewFile(url, name string, size int64) *Message {
	m := &Message{Type: File, File: &FileInfo{URL: url}}
	if name != "" || size != 0 {
		m.File.Meta = &FileMeta{Name: name, Size: size}
	}
	return m
}

// NewLocation returns a location message for the given coordinates.
func NewLocation(latitude, longitude float64) *Message {
	return &Message{Type: Location, Location: &GeoPoint{Latitude: latitude, Longitude: longitude}}
}

// NewRecalled returns the body a recalled message is replaced with,
// {"_lctype":-127} (realtime.RecalledBody).
func NewRecalled() *Message {
	return &Message{Type: Recalled}
}

package typedmsg

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/leanhub/realtime"
)

const (
	// MaxSize is the longest body, in bytes, Decode accepts.
	MaxSize = 1 << 20
	// MaxDepth is the deepest nesting of JSON objects and arrays, the body
	// itself included, Decode accepts. SDK bodies nest 3 deep; the rest is
	// room for applications' attributes.
	MaxDepth = 32
)

// Names of the fields this package decodes; other top-level fields go to
// Message.Extra.
const (
	fieldType     = "_lctype"
	fieldText     = "_lctext"
	fieldAttrs    = "_lcattrs"
	fieldFile     = "_lcfile"
	fieldLocation = "_lcloc"
)

func isReserved(key string) bool {
	switch key {
	case fieldType, fieldText, fieldAttrs, fieldFile, fieldLocation:
		return true
	}
	return false
}

func invalid(format string, args ...any) *realtime.Error {
	return realtime.ErrInvalidMessage.WithDetail(format, args...)
}

// IsTyped reports whether data is a typed-message body: a JSON object whose
// "_lctype" is an integer in the int32 range.
func IsTyped(data string) bool {
	_, ok := TypeOf(data)
	return ok
}

// TypeOf returns the "_lctype" of a typed-message body, and false for
// anything else (plain text, invalid JSON, JSON that is not an object, an
// "_lctype" that is missing, not a number, not an integer or out of the
// int32 range). When "_lctype" appears more than once the last one counts,
// as with JSON.parse. It allocates nothing for ordinary bodies.
func TypeOf(data string) (Type, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' || !json.Valid([]byte(data)) {
		return 0, false
	}
	var raw string
	found := false
	eachMember(data[i:], func(key, value string) {
		if keyIs(key, fieldType) {
			raw, found = value, true
		}
	})
	if !found {
		return 0, false
	}
	return parseType(raw)
}

// parseType reads a JSON value as a Type: an integral number in int32 range.
func parseType(raw string) (Type, bool) {
	if raw == "" || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt32 || f > math.MaxInt32 {
		return 0, false
	}
	return Type(f), true
}

// keyIs reports whether the quoted JSON string key decodes to name.
func keyIs(key, name string) bool {
	if len(key) == len(name)+2 && key[1:len(key)-1] == name {
		return true
	}
	if !strings.Contains(key, `\`) {
		return false
	}
	var s string
	return json.Unmarshal([]byte(key), &s) == nil && s == name
}

// Decode parses a typed-message body. It returns realtime.ErrInvalidMessage
// when data is not a typed body (see TypeOf), nests deeper than MaxDepth, or
// has a known field of the wrong JSON type ("_lctext" not a string,
// "_lcattrs" not an object, a metaData "size" that is not an integer,
// "_lcloc" without numeric coordinates...), and realtime.ErrMessageTooLarge
// when it is longer than MaxSize. Fields it does not know are kept in the
// Extra maps.
func Decode(data string) (*Message, error) {
	if len(data) > MaxSize {
		return nil, realtime.ErrMessageTooLarge.WithDetail("typed message body of %d bytes is over %d", len(data), MaxSize)
	}
	t, ok := TypeOf(data)
	if !ok {
		return nil, invalid("not a typed message: want a JSON object with an integer _lctype")
	}
	if depth(data) > MaxDepth {
		return nil, invalid("typed message nests deeper than %d levels", MaxDepth)
	}
	fields, err := object(json.RawMessage(data))
	if err != nil {
		return nil, invalid("typed message is not a JSON object")
	}
	delete(fields, fieldType)
	m := &Message{Type: t}
	if raw, ok := take(fields, fieldText); ok {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, invalid("_lctext must be a string")
		}
		m.Text = &s
	}
	if raw, ok := take(fields, fieldAttrs); ok {
		if !isObject(raw) {
			return nil, invalid("_lcattrs must be a JSON object")
		}
		m.Attrs = compact(raw)
	}
	if raw, ok := take(fields, fieldFile); ok {
		if m.File, err = decodeFile(raw); err != nil {
			return nil, err
		}
	}
	if raw, ok := take(fields, fieldLocation); ok {
		if m.Location, err = decodeGeoPoint(raw); err != nil {
			return nil, err
		}
	}
	m.Extra = extra(fields)
	return m, nil
}

func decodeFile(raw json.RawMessage) (*FileInfo, error) {
	fields, err := object(raw)
	if err != nil {
		return nil, invalid("_lcfile must be a JSON object")
	}
	f := &FileInfo{}
	if f.URL, err = takeString(fields, "url", "_lcfile.url"); err != nil {
		return nil, err
	}
	if f.ObjID, err = takeString(fields, "objId", "_lcfile.objId"); err != nil {
		return nil, err
	}
	if raw, ok := take(fields, "metaData"); ok {
		if f.Meta, err = decodeMeta(raw); err != nil {
			return nil, err
		}
	}
	f.Extra = extra(fields)
	return f, nil
}

func decodeMeta(raw json.RawMessage) (*FileMeta, error) {
	fields, err := object(raw)
	if err != nil {
		return nil, invalid("_lcfile.metaData must be a JSON object")
	}
	meta := &FileMeta{}
	if meta.Name, err = takeString(fields, "name", "_lcfile.metaData.name"); err != nil {
		return nil, err
	}
	if meta.Format, err = takeString(fields, "format", "_lcfile.metaData.format"); err != nil {
		return nil, err
	}
	if raw, ok := take(fields, "size"); ok {
		// Sizes are integers everywhere, but a JS client may write 1024.0
		// as 1024 or 1.024e3: accept any integral number JS could hold.
		f, ok := number(raw)
		if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return nil, invalid("_lcfile.metaData.size must be an integer")
		}
		meta.Size = int64(f)
	}
	for _, n := range []struct {
		key string
		dst *float64
	}{{"width", &meta.Width}, {"height", &meta.Height}, {"duration", &meta.Duration}} {
		if raw, ok := take(fields, n.key); ok {
			if *n.dst, ok = number(raw); !ok {
				return nil, invalid("_lcfile.metaData.%s must be a number", n.key)
			}
		}
	}
	meta.Extra = extra(fields)
	return meta, nil
}

func decodeGeoPoint(raw json.RawMessage) (*GeoPoint, error) {
	fields, err := object(raw)
	if err != nil {
		return nil, invalid("_lcloc must be a JSON object")
	}
	p := &GeoPoint{}
	for _, n := range []struct {
		key string
		dst *float64
	}{{"latitude", &p.Latitude}, {"longitude", &p.Longitude}} {
		raw, ok := take(fields, n.key)
		if !ok {
			return nil, invalid("_lcloc.%s is missing", n.key)
		}
		if *n.dst, ok = number(raw); !ok {
			return nil, invalid("_lcloc.%s must be a number", n.key)
		}
	}
	p.Extra = extra(fields)
	return p, nil
}

// object unmarshals a JSON object into its members; an error for anything
// else.
func object(raw json.RawMessage) (map[string]json.RawMessage, error) {
	if !isObject(raw) {
		return nil, errors.New("not an object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	return fields, nil
}

func isObject(raw json.RawMessage) bool {
	i := skipSpace(string(raw), 0)
	return i < len(raw) && raw[i] == '{'
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// take removes key from fields and returns its value, reporting a JSON null
// as absent.
func take(fields map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	raw, ok := fields[key]
	if !ok {
		return nil, false
	}
	delete(fields, key)
	return raw, !isNull(raw)
}

func takeString(fields map[string]json.RawMessage, key, name string) (string, error) {
	raw, ok := take(fields, key)
	if !ok {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", invalid("%s must be a string", name)
	}
	return s, nil
}

// number reads a JSON number; strings, booleans and numbers beyond float64
// are refused.
func number(raw json.RawMessage) (float64, bool) {
	s := string(bytes.TrimSpace(raw))
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// extra returns the remaining fields, compacted, or nil when none remain.
func extra(fields map[string]json.RawMessage) map[string]json.RawMessage {
	if len(fields) == 0 {
		return nil
	}
	out := make(map[string]json.RawMessage, len(fields))
	for k, v := range fields {
		out[k] = compact(v)
	}
	return out
}

// compact removes insignificant white space without escaping anything, so
// values come back as their sender wrote them.
func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw // unreachable: raw came from a valid document
	}
	return b.Bytes()
}

// Encode writes m as a typed-message body in the JS SDK's field order (see
// the package documentation). It returns realtime.ErrInvalidMessage when a
// raw JSON value (Attrs, Extra) is not valid JSON, Attrs is not an object,
// an Extra key is one of the known fields, the type is outside the int32
// range or a number is NaN or infinite.
func (m *Message) Encode() (string, error) {
	if m == nil {
		return "", invalid("nil typed message")
	}
	if int64(m.Type) < math.MinInt32 || int64(m.Type) > math.MaxInt32 {
		return "", invalid("_lctype %d is out of range", m.Type)
	}
	w := &objectWriter{}
	w.open()
	if m.Text != nil {
		w.key(fieldText)
		w.string(*m.Text)
	}
	if m.Attrs != nil {
		if !json.Valid(m.Attrs) || !isObject(m.Attrs) {
			return "", invalid("_lcattrs must be a JSON object")
		}
		w.key(fieldAttrs)
		w.raw(m.Attrs)
	}
	if m.File != nil {
		w.key(fieldFile)
		if err := m.File.encode(w); err != nil {
			return "", err
		}
	}
	if m.Location != nil {
		w.key(fieldLocation)
		if err := m.Location.encode(w); err != nil {
			return "", err
		}
	}
	for _, k := range sortedKeys(m.Extra) {
		if isReserved(k) {
			return "", invalid("extra field %q is reserved", k)
		}
		if err := w.extra(k, m.Extra[k], ""); err != nil {
			return "", err
		}
	}
	w.key(fieldType)
	w.b.WriteString(strconv.Itoa(int(m.Type)))
	w.close()
	return w.b.String(), nil
}

func (f *FileInfo) encode(w *objectWriter) error {
	w.open()
	if f.ObjID != "" {
		w.key("objId")
		w.string(f.ObjID)
	}
	if f.URL != "" {
		w.key("url")
		w.string(f.URL)
	}
	if f.Meta != nil {
		w.key("metaData")
		if err := f.Meta.encode(w); err != nil {
			return err
		}
	}
	for _, k := range sortedKeys(f.Extra) {
		if k == "objId" || k == "url" || k == "metaData" {
			return invalid("_lcfile extra field %q is reserved", k)
		}
		if err := w.extra(k, f.Extra[k], "_lcfile."); err != nil {
			return err
		}
	}
	w.close()
	return nil
}

func (meta *FileMeta) encode(w *objectWriter) error {
	w.open()
	if meta.Name != "" {
		w.key("name")
		w.string(meta.Name)
	}
	if meta.Format != "" {
		w.key("format")
		w.string(meta.Format)
	}
	if meta.Size != 0 {
		w.key("size")
		w.b.WriteString(strconv.FormatInt(meta.Size, 10))
	}
	for _, n := range []struct {
		key string
		v   float64
	}{{"width", meta.Width}, {"height", meta.Height}, {"duration", meta.Duration}} {
		if n.v == 0 {
			continue
		}
		w.key(n.key)
		if err := w.float(n.v, "_lcfile.metaData."+n.key); err != nil {
			return err
		}
	}
	for _, k := range sortedKeys(meta.Extra) {
		switch k {
		case "name", "format", "size", "width", "height", "duration":
			return invalid("_lcfile.metaData extra field %q is reserved", k)
		}
		if err := w.extra(k, meta.Extra[k], "_lcfile.metaData."); err != nil {
			return err
		}
	}
	w.close()
	return nil
}

func (p *GeoPoint) encode(w *objectWriter) error {
	w.open()
	w.key("latitude")
	if err := w.float(p.Latitude, "_lcloc.latitude"); err != nil {
		return err
	}
	w.key("longitude")
	if err := w.float(p.Longitude, "_lcloc.longitude"); err != nil {
		return err
	}
	for _, k := range sortedKeys(p.Extra) {
		if k == "latitude" || k == "longitude" {
			return invalid("_lcloc extra field %q is reserved", k)
		}
		if err := w.extra(k, p.Extra[k], "_lcloc."); err != nil {
			return err
		}
	}
	w.close()
	return nil
}

// objectWriter writes JSON objects member by member. It escapes strings as
// JSON.stringify does (no HTML escaping), which encoding/json's Marshal would
// not.
type objectWriter struct {
	b     bytes.Buffer
	first bool // no member written yet in the innermost open object
}

func (w *objectWriter) open() {
	w.b.WriteByte('{')
	w.first = true
}

func (w *objectWriter) close() {
	w.b.WriteByte('}')
	w.first = false
}

func (w *objectWriter) key(k string) {
	if !w.first {
		w.b.WriteByte(',')
	}
	w.first = false
	w.string(k)
	w.b.WriteByte(':')
}

func (w *objectWriter) string(s string) {
	enc := json.NewEncoder(&w.b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	w.b.Truncate(w.b.Len() - 1) // Encode's newline
}

func (w *objectWriter) float(f float64, name string) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return invalid("%s must be a finite number", name)
	}
	// encoding/json formats float64 like JavaScript's Number#toString.
	b, _ := json.Marshal(f)
	w.b.Write(b)
	return nil
}

func (w *objectWriter) raw(v json.RawMessage) {
	_ = json.Compact(&w.b, v) // callers checked json.Valid
}

func (w *objectWriter) extra(k string, v json.RawMessage, prefix string) error {
	if !json.Valid(v) {
		return invalid("%s%s is not valid JSON", prefix, k)
	}
	w.key(k)
	w.raw(v)
	return nil
}

func sortedKeys(m map[string]json.RawMessage) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

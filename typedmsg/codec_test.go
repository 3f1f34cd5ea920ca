package typedmsg

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/leanhub/realtime"
)

// roundTrips are bodies as the SDKs send them. want is what Encode writes
// after Decode; empty means the body itself (the JS SDK's field order).
var roundTrips = []struct {
	name string
	in   string
	want string
}{
	{name: "js text with attrs", in: `{"_lctext":"hi","_lcattrs":{"city":"Montreal"},"_lctype":-1}`},
	{name: "js text default empty", in: `{"_lctext":"","_lctype":-1}`},
	{name: "text not html escaped", in: `{"_lctext":"<b>a & b</b> \"q\" \\ \n\t 你好 😀","_lctype":-1}`},
	{name: "attrs kept verbatim", in: `{"_lctext":"x","_lcattrs":{"z":1,"a":[1.50,{"<":"&"}],"n":null},"_lctype":-1}`},
	{
		name: "brief order (_lctype first)",
		in:   `{"_lctype":-1,"_lctext":"hi","_lcattrs":{"city":"Montreal"}}`,
		want: `{"_lctext":"hi","_lcattrs":{"city":"Montreal"},"_lctype":-1}`,
	},
	{
		name: "whitespace",
		in:   "{ \"_lctype\" : -1 ,\n\t\"_lcattrs\" : { \"a\" : [ 1 , 2 ] } }",
		want: `{"_lcattrs":{"a":[1,2]},"_lctype":-1}`,
	},
	{
		name: "image",
		in:   `{"_lctext":"look","_lcfile":{"objId":"5a8f2c1e9f54540070a0e1b2","url":"https://files.example.com/photo.jpg","metaData":{"name":"photo.jpg","format":"jpg","size":18302,"width":1024,"height":768}},"_lctype":-2}`,
	},
	{
		name: "js image from AV.File (storage metaData first)",
		in:   `{"_lcfile":{"objId":"5a8f2c1e9f54540070a0e1b2","url":"https://files.example.com/a.png","metaData":{"owner":"unknown","size":1024,"name":"a.png"}},"_lctype":-2}`,
		want: `{"_lcfile":{"objId":"5a8f2c1e9f54540070a0e1b2","url":"https://files.example.com/a.png","metaData":{"name":"a.png","size":1024,"owner":"unknown"}},"_lctype":-2}`,
	},
	{
		name: "android image (hash order)",
		in:   `{"_lcfile":{"metaData":{"height":768,"width":1024,"format":"jpg","size":18302,"_checksum":"d41d8cd98f00b204e9800998ecf8427e"},"objId":"5a8f","url":"https://f.example.com/p.jpg"},"_lctype":-2,"_lctext":"look"}`,
		want: `{"_lctext":"look","_lcfile":{"objId":"5a8f","url":"https://f.example.com/p.jpg","metaData":{"format":"jpg","size":18302,"width":1024,"height":768,"_checksum":"d41d8cd98f00b204e9800998ecf8427e"}},"_lctype":-2}`,
	},
	{name: "ios fractional image size", in: `{"_lcfile":{"url":"https://f.example.com/p.png","metaData":{"width":333.5,"height":250.25}},"_lctype":-2}`},
	{name: "audio", in: `{"_lcfile":{"objId":"5a8f","url":"https://f.example.com/v.m4a","metaData":{"name":"voice.m4a","format":"m4a","size":5467,"duration":3.276}},"_lctype":-3}`},
	{name: "video", in: `{"_lcfile":{"objId":"5a8f","url":"https://f.example.com/v.mp4","metaData":{"name":"v.mp4","format":"mp4","size":1048576,"width":1280,"height":720,"duration":12.5}},"_lctype":-4}`},
	{name: "location", in: `{"_lctext":"Montreal","_lcloc":{"latitude":45.5017,"longitude":-73.5673},"_lctype":-5}`},
	{name: "location at 0,0", in: `{"_lcloc":{"latitude":0,"longitude":0},"_lctype":-5}`},
	{name: "file", in: `{"_lcfile":{"objId":"5a8f","url":"https://f.example.com/r.pdf","metaData":{"name":"report.pdf","size":102400,"owner":"unknown"}},"_lctype":-6}`},
	{name: "file without metaData", in: `{"_lcfile":{"url":"https://f.example.com/r.pdf","bucket":"b1"},"_lctype":-6}`},
	{name: "recalled", in: realtime.RecalledBody},
	{name: "custom op", in: `{"op":"typing","_lctype":1}`},
	{name: "custom with text attrs and fields", in: `{"_lctext":"x","_lcattrs":{"a":1},"op":{"k":[1,2]},"target":"bob","_lctype":1}`},
	{name: "custom on a file", in: `{"_lcfile":{"url":"https://f.example.com/s.gif"},"sticker":"cat","_lctype":7}`},
	{name: "unknown top-level field on built-in", in: `{"_lctext":"hi","client":null,"_lctype":-1}`},
	{name: "unknown type", in: `{"_lctext":"?","_lctype":99}`},
	{name: "type 0", in: `{"_lctype":0}`},
	{name: "null known fields are absent", in: `{"_lctext":null,"_lcattrs":null,"_lctype":-1}`, want: `{"_lctype":-1}`},
	{name: "integral float type", in: `{"_lctype":-1.0}`, want: `{"_lctype":-1}`},
	{name: "escaped key", in: `{"\u005flctext":"hi","_lctype":-1}`, want: `{"_lctext":"hi","_lctype":-1}`},
	{name: "duplicate key last wins", in: `{"_lctype":2,"_lctext":"a","_lctext":"b","_lctype":-1}`, want: `{"_lctext":"b","_lctype":-1}`},
	{name: "zero size is omitted", in: `{"_lcfile":{"url":"u","metaData":{"size":0}},"_lctype":-6}`, want: `{"_lcfile":{"url":"u","metaData":{}},"_lctype":-6}`},
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTrips {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == "" {
				want = tc.in
			}
			m, err := Decode(tc.in)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got, err := m.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if got != want {
				t.Errorf("Encode(Decode(in))\n got %s\nwant %s", got, want)
			}
			if !strings.Contains(tc.name, "null") && !strings.Contains(tc.name, "zero") &&
				!strings.Contains(tc.name, "duplicate") && !jsonEqual(t, tc.in, got) {
				t.Errorf("Encode(Decode(in)) is not the same JSON as in:\n got %s\n  in %s", got, tc.in)
			}
			if typ, ok := TypeOf(got); !ok || typ != m.Type {
				t.Errorf("TypeOf(encoded) = %v, %v; want %v", typ, ok, m.Type)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(va, vb)
}

func ptr[T any](v T) *T { return &v }

func TestDecodeFields(t *testing.T) {
	tests := []struct {
		in   string
		want *Message
	}{
		{
			`{"_lctext":"hi","_lcattrs":{ "city": "Montreal" },"_lctype":-1}`,
			&Message{Type: Text, Text: ptr("hi"), Attrs: json.RawMessage(`{"city":"Montreal"}`)},
		},
		{
			`{"_lcfile":{"objId":"o1","url":"https://u","metaData":{"name":"a.png","format":"png","size":10,"width":2,"height":3,"duration":1.5,"owner":"unknown"},"x":true},"_lctype":-2}`,
			&Message{Type: Image, File: &FileInfo{
				URL: "https://u", ObjID: "o1",
				Meta: &FileMeta{
					Name: "a.png", Format: "png", Size: 10, Width: 2, Height: 3, Duration: 1.5,
					Extra: map[string]json.RawMessage{"owner": json.RawMessage(`"unknown"`)},
				},
				Extra: map[string]json.RawMessage{"x": json.RawMessage(`true`)},
			}},
		},
		{
			`{"_lcloc":{"latitude":-33.8688,"longitude":151.2093},"_lctype":-5}`,
			&Message{Type: Location, Location: &GeoPoint{Latitude: -33.8688, Longitude: 151.2093}},
		},
		{
			`{"op":{"kind": "kick","who":["a","b"]},"_lctype":1}`,
			&Message{Type: 1, Extra: map[string]json.RawMessage{"op": json.RawMessage(`{"kind":"kick","who":["a","b"]}`)}},
		},
		{realtime.RecalledBody, &Message{Type: Recalled}},
	}
	for _, tc := range tests {
		got, err := Decode(tc.in)
		if err != nil {
			t.Errorf("Decode(%s): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Decode(%s)\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

func TestTypeOf(t *testing.T) {
	tests := []struct {
		in   string
		want Type
		ok   bool
	}{
		{`{"_lctype":-1}`, Text, true},
		{` {"_lctext":"a"  ,  "_lctype" :  -127 } `, Recalled, true},
		{`{"a":{"_lctype":2},"b":["_lctype",3],"_lctype":4}`, 4, true},
		{`{"a":"\"_lctype\":5","_lctype":6}`, 6, true},
		{`{"_lctype":1,"_lctype":2}`, 2, true},
		{`{"\u005flctype":-5}`, Location, true},
		{`{"_lctype":-1.0}`, Text, true},
		{`{"_lctype":1E1}`, 10, true},
		{`{"_lctype":2147483647}`, 2147483647, true},
		{"", 0, false},
		{"hello", 0, false},
		{"-1", 0, false},
		{`"{\"_lctype\":-1}"`, 0, false},
		{`[{"_lctype":-1}]`, 0, false},
		{`{"_lctext":"no type"}`, 0, false},
		{`{"_lctype":"-1"}`, 0, false},
		{`{"_lctype":null}`, 0, false},
		{`{"_lctype":true}`, 0, false},
		{`{"_lctype":1.5}`, 0, false},
		{`{"_lctype":2147483648}`, 0, false},
		{`{"_lctype":-1`, 0, false},
		{`{"_lctype":-1}x`, 0, false},
		{`{"_lctype":-1,"_lctype":"x"}`, 0, false},
		{`{"_LCTYPE":-1}`, 0, false},
	}
	for _, tc := range tests {
		got, ok := TypeOf(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("TypeOf(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if IsTyped(tc.in) != tc.ok {
			t.Errorf("IsTyped(%q) = %v; want %v", tc.in, !tc.ok, tc.ok)
		}
	}
}

func TestDecodeInvalid(t *testing.T) {
	deep := `{"_lctype":1,"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + "}"
	notDeep := `{"_lctype":1,"a":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + "}"
	if _, err := Decode(notDeep); err != nil {
		t.Errorf("Decode at MaxDepth: %v", err)
	}
	tests := []struct {
		name, in, detail string
	}{
		{"plain text", "hello", "not a typed message"},
		{"no type", `{"_lctext":"hi"}`, "not a typed message"},
		{"text not string", `{"_lctext":1,"_lctype":-1}`, "_lctext must be a string"},
		{"attrs array", `{"_lcattrs":[1],"_lctype":-1}`, "_lcattrs must be a JSON object"},
		{"attrs string", `{"_lcattrs":"{}","_lctype":-1}`, "_lcattrs must be a JSON object"},
		{"file string", `{"_lcfile":"https://u","_lctype":-2}`, "_lcfile must be a JSON object"},
		{"url number", `{"_lcfile":{"url":1},"_lctype":-2}`, "_lcfile.url must be a string"},
		{"objId number", `{"_lcfile":{"url":"u","objId":7},"_lctype":-2}`, "_lcfile.objId must be a string"},
		{"metaData array", `{"_lcfile":{"url":"u","metaData":[]},"_lctype":-2}`, "metaData must be a JSON object"},
		{"size string", `{"_lcfile":{"url":"u","metaData":{"size":"10"}},"_lctype":-2}`, "size must be an integer"},
		{"size fraction", `{"_lcfile":{"url":"u","metaData":{"size":1.5}},"_lctype":-2}`, "size must be an integer"},
		{"size huge", `{"_lcfile":{"url":"u","metaData":{"size":1e300}},"_lctype":-2}`, "size must be an integer"},
		{"width string", `{"_lcfile":{"url":"u","metaData":{"width":"1"}},"_lctype":-2}`, "width must be a number"},
		{"duration overflow", `{"_lcfile":{"url":"u","metaData":{"duration":1e999}},"_lctype":-3}`, "duration must be a number"},
		{"name number", `{"_lcfile":{"url":"u","metaData":{"name":1}},"_lctype":-2}`, "name must be a string"},
		{"loc missing longitude", `{"_lcloc":{"latitude":1},"_lctype":-5}`, "_lcloc.longitude is missing"},
		{"loc string", `{"_lcloc":{"latitude":"1","longitude":2},"_lctype":-5}`, "_lcloc.latitude must be a number"},
		{"loc array", `{"_lcloc":[1,2],"_lctype":-5}`, "_lcloc must be a JSON object"},
		{"too deep", deep, "nests deeper"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.in)
			if err == nil {
				t.Fatalf("Decode = %+v, want error", m)
			}
			if !errors.Is(err, realtime.ErrInvalidMessage) {
				t.Errorf("error %v is not ErrInvalidMessage", err)
			}
			if e := realtime.AsError(err); !strings.Contains(e.Detail, tc.detail) {
				t.Errorf("detail %q does not contain %q", e.Detail, tc.detail)
			}
		})
	}

	big := `{"_lctext":"` + strings.Repeat("a", MaxSize) + `","_lctype":-1}`
	if _, err := Decode(big); !errors.Is(err, realtime.ErrMessageTooLarge) {
		t.Errorf("Decode(%d bytes) = %v, want ErrMessageTooLarge", len(big), err)
	}
}

func TestConstructors(t *testing.T) {
	tests := []struct {
		m    *Message
		want string
	}{
		{NewText("hi"), `{"_lctext":"hi","_lctype":-1}`},
		{NewText(""), `{"_lctext":"","_lctype":-1}`},
		{NewImage("https://u/p.png", 800, 600), `{"_lcfile":{"url":"https://u/p.png","metaData":{"width":800,"height":600}},"_lctype":-2}`},
		{NewImage("https://u/p.png", 0, 0), `{"_lcfile":{"url":"https://u/p.png"},"_lctype":-2}`},
		{NewAudio("https://u/a.m4a", 3.5), `{"_lcfile":{"url":"https://u/a.m4a","metaData":{"duration":3.5}},"_lctype":-3}`},
		{NewVideo("https://u/v.mp4", 0), `{"_lcfile":{"url":"https://u/v.mp4"},"_lctype":-4}`},
		{NewFile("https://u/r.pdf", "r.pdf", 2048), `{"_lcfile":{"url":"https://u/r.pdf","metaData":{"name":"r.pdf","size":2048}},"_lctype":-6}`},
		{NewLocation(45.5017, -73.5673), `{"_lcloc":{"latitude":45.5017,"longitude":-73.5673},"_lctype":-5}`},
		{NewRecalled(), realtime.RecalledBody},
	}
	for _, tc := range tests {
		got, err := tc.m.Encode()
		if err != nil {
			t.Errorf("Encode(%+v): %v", tc.m, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Encode = %s, want %s", got, tc.want)
		}
		if err := (*Registry)(nil).Validate(got); err != nil {
			t.Errorf("Validate(%s): %v", got, err)
		}
	}

	m := NewLocation(1, 2)
	m.SetText("here")
	if got, _ := m.Encode(); got != `{"_lctext":"here","_lcloc":{"latitude":1,"longitude":2},"_lctype":-5}` {
		t.Errorf("SetText: %s", got)
	}
}

func TestEncodeInvalid(t *testing.T) {
	tests := []struct {
		name string
		m    *Message
	}{
		{"nil", nil},
		{"attrs not json", &Message{Type: Text, Attrs: json.RawMessage(`{`)}},
		{"attrs not object", &Message{Type: Text, Attrs: json.RawMessage(`[1]`)}},
		{"extra reserved", &Message{Type: 1, Extra: map[string]json.RawMessage{"_lctype": json.RawMessage(`2`)}}},
		{"extra not json", &Message{Type: 1, Extra: map[string]json.RawMessage{"op": json.RawMessage(`nope`)}}},
		{"extra empty", &Message{Type: 1, Extra: map[string]json.RawMessage{"op": nil}}},
		{"file extra reserved", &Message{Type: File, File: &FileInfo{URL: "u", Extra: map[string]json.RawMessage{"url": json.RawMessage(`"v"`)}}}},
		{"meta extra reserved", &Message{Type: File, File: &FileInfo{URL: "u", Meta: &FileMeta{Extra: map[string]json.RawMessage{"size": json.RawMessage(`1`)}}}}},
		{"nan latitude", NewLocation(math.NaN(), 0)},
		{"inf duration", NewAudio("u", math.Inf(1))},
		{"type out of range", &Message{Type: math.MaxInt}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "type out of range" && math.MaxInt == math.MaxInt32 {
				t.Skip("int is 32 bits")
			}
			s, err := tc.m.Encode()
			if !errors.Is(err, realtime.ErrInvalidMessage) {
				t.Errorf("Encode = %q, %v; want ErrInvalidMessage", s, err)
			}
		})
	}
}

func TestTypeString(t *testing.T) {
	for typ, want := range map[Type]string{Text: "text", Image: "image", Audio: "audio", Video: "video",
		Location: "location", File: "file", Recalled: "recalled", 1: "type(1)", -7: "type(-7)"} {
		if got := typ.String(); got != want {
			t.Errorf("Type(%d).String() = %q, want %q", int(typ), got, want)
		}
	}
}

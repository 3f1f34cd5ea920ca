package typedmsg

import (
	"reflect"
	"testing"
)

// FuzzDecode checks that Decode never panics and that what it accepts
// survives Encode: Decode(Encode(Decode(x))) equals Decode(x), and encoding
// again gives the same bytes.
func FuzzDecode(f *testing.F) {
	for _, tc := range roundTrips {
		f.Add(tc.in)
	}
	for _, s := range []string{
		"", "hello", "{}", "[]", "null", `{"_lctype":1.5}`, `{"_lctype":-1,"_lctext":"\ud800"}`,
		`{"_lctype":-1,"_lcattrs":{"a":"\u2028<>&"}}`, `{"_lctype":-5,"_lcloc":{"latitude":-0,"longitude":1e-7}}`,
		`{"_lctype":-2,"_lcfile":{"metaData":{"size":-9007199254740992,"width":1e20}}}`,
		"{\"_lctype\":-1,\"_lctext\":\"\xff\xfe\",\"x\":\"\xff\"}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		m, err := Decode(data)
		if err != nil {
			if m != nil {
				t.Fatalf("Decode returned both %+v and %v", m, err)
			}
			return
		}
		if typ, ok := TypeOf(data); !ok || typ != m.Type {
			t.Fatalf("TypeOf = %v, %v but Decode gave type %v", typ, ok, m.Type)
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("Encode(Decode(%q)): %v", data, err)
		}
		if len(enc) > MaxSize {
			return // invalid UTF-8 grows into U+FFFD; nothing to compare past the limit
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) = %v; encoded %q", data, err, enc)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the message\n  in %q\n enc %q\n m1 %#v\n m2 %#v", data, enc, m, m2)
		}
		enc2, err := m2.Encode()
		if err != nil || enc2 != enc {
			t.Fatalf("second Encode = %q, %v; want %q", enc2, err, enc)
		}
	})
}

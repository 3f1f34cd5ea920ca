package hub

import (
	"encoding/json"
	"testing"
)

// The REST API's decoders of untrusted bodies: whatever the bytes, they
// answer without panicking, and what they accept is well formed.

func FuzzRESTConvUpdate(f *testing.F) {
	for _, s := range []string{`{"name":"x"}`, `{"attr.a":1,"attr":{"b":null}}`, `{"attr.a.b":1}`, `{"m":[]}`,
		`{"attr":[]}`, `{"":1}`, `{"name":1}`, `{}`, `null`, `{"attr.x":{"y":[1,2]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var body map[string]json.RawMessage
		if json.Unmarshal(b, &body) != nil {
			return
		}
		u, err := parseConvUpdate(body)
		if err != nil {
			return
		}
		if u.Name == nil && len(u.Attrs) == 0 {
			t.Fatalf("accepted an update that changes nothing: %s", b)
		}
		if len(u.Attrs) > 0 && !isJSONObject(u.Attrs) {
			t.Fatalf("attributes %s of %s are not a JSON object", u.Attrs, b)
		}
		if _, ok := body["name"]; u.Name != nil && !ok {
			t.Fatalf("a name from nowhere in %s", b)
		}
	})
}

func FuzzRESTMessageBody(f *testing.F) {
	for _, s := range []string{`"hi"`, `{"_lctype":-1,"_lctext":"x"}`, `""`, `null`, `1`, `"{\"alert\":\"a\"}"`, `[1]`, `{"a":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if text, err := messageText(b); err == nil && text == "" {
			t.Fatalf("accepted an empty message from %q", b)
		}
		p, err := pushData(b)
		if err == nil && p != nil && !isJSONObject(p) {
			t.Fatalf("push data %q from %q is not a JSON object", p, b)
		}
	})
}

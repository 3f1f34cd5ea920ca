package typedmsg

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/leanhub/realtime"
)

const (
	operationType Type = 1
	stickerType   Type = 7
)

func testRegistry(t *testing.T) *Registry {
	t.Helper()
	r := &Registry{}
	err := r.Register(operationType, "operation", func(m *Message) error {
		var op string
		if err := json.Unmarshal(m.Extra["op"], &op); err != nil || op == "" {
			return errors.New("op must be a non-empty string")
		}
		if op == "forbidden" {
			return realtime.ErrMessageRejected.WithDetail("op %q is not allowed", op)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(stickerType, "sticker", nil); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegister(t *testing.T) {
	r := testRegistry(t)
	for _, typ := range []Type{0, Text, Recalled, -1000} {
		if err := r.Register(typ, "x", nil); err == nil {
			t.Errorf("Register(%d) succeeded, want error", typ)
		}
	}
	if err := r.Register(operationType, "again", nil); err == nil || !strings.Contains(err.Error(), `"operation"`) {
		t.Errorf("second Register(1) = %v, want already-registered error", err)
	}
	if name, ok := r.Name(operationType); !ok || name != "operation" {
		t.Errorf("Name(1) = %q, %v", name, ok)
	}
	if name, ok := r.Name(Image); !ok || name != "image" {
		t.Errorf("Name(Image) = %q, %v", name, ok)
	}
	if _, ok := r.Name(99); ok {
		t.Error("Name(99) found an unregistered type")
	}
	if _, ok := (*Registry)(nil).Name(1); ok {
		t.Error("nil registry found type 1")
	}
}

func TestValidate(t *testing.T) {
	r := testRegistry(t)
	deep := strings.Repeat("[", MaxDepth+5) + strings.Repeat("]", MaxDepth+5)
	tests := []struct {
		name string
		in   string
		err  *realtime.Error // nil: accepted
		// detail is a substring the error's detail must contain.
		detail string
	}{
		{name: "plain text", in: "hello, world"},
		{name: "empty", in: ""},
		{name: "broken json", in: `{"_lctype":-1,`},
		{name: "untyped json", in: `{"cmd":"x","_lctext":5}`},
		{name: "non-integer type is untyped", in: `{"_lctype":"-1","_lctext":5}`},
		{name: "unknown custom type untouched", in: `{"_lctext":5,"_lcloc":"x","_lctype":42}`},
		{name: "unknown negative type untouched", in: `{"_lcfile":1,"_lctype":-50}`},
		{name: "unknown type deep", in: `{"a":` + deep + `,"_lctype":42}`},
		{name: "text", in: `{"_lctext":"hi","_lcattrs":{"a":1},"_lctype":-1}`},
		{name: "text without _lctext", in: `{"_lctype":-1}`},
		{name: "recalled", in: realtime.RecalledBody},
		{name: "image", in: `{"_lcfile":{"url":"https://u/p.png"},"_lctype":-2}`},
		{name: "location edge", in: `{"_lcloc":{"latitude":-90,"longitude":180},"_lctype":-5}`},
		{name: "text number", in: `{"_lctext":5,"_lctype":-1}`, err: realtime.ErrInvalidMessage, detail: "_lctext must be a string"},
		{name: "text deep", in: `{"_lcattrs":{"a":` + deep + `},"_lctype":-1}`, err: realtime.ErrInvalidMessage, detail: "nests deeper"},
		{name: "image without file", in: `{"_lctext":"x","_lctype":-2}`, err: realtime.ErrInvalidMessage, detail: "image message needs _lcfile.url"},
		{name: "audio without url", in: `{"_lcfile":{"objId":"o"},"_lctype":-3}`, err: realtime.ErrInvalidMessage, detail: "audio message needs _lcfile.url"},
		{name: "video empty url", in: `{"_lcfile":{"url":""},"_lctype":-4}`, err: realtime.ErrInvalidMessage, detail: "video message needs"},
		{name: "file without file", in: `{"_lctype":-6}`, err: realtime.ErrInvalidMessage, detail: "file message needs"},
		{name: "negative size", in: `{"_lcfile":{"url":"u","metaData":{"size":-1}},"_lctype":-6}`, err: realtime.ErrInvalidMessage, detail: "must not be negative"},
		{name: "negative duration", in: `{"_lcfile":{"url":"u","metaData":{"duration":-0.5}},"_lctype":-3}`, err: realtime.ErrInvalidMessage, detail: "must not be negative"},
		{name: "location missing", in: `{"_lctext":"here","_lctype":-5}`, err: realtime.ErrInvalidMessage, detail: "needs _lcloc"},
		{name: "latitude out of range", in: `{"_lcloc":{"latitude":91,"longitude":0},"_lctype":-5}`, err: realtime.ErrInvalidMessage, detail: "latitude 91"},
		{name: "longitude out of range", in: `{"_lcloc":{"latitude":0,"longitude":-180.5},"_lctype":-5}`, err: realtime.ErrInvalidMessage, detail: "longitude -180.5"},
		{name: "latitude string", in: `{"_lcloc":{"latitude":"1","longitude":0},"_lctype":-5}`, err: realtime.ErrInvalidMessage, detail: "must be a number"},
		{name: "custom ok", in: `{"op":"typing","_lctype":1}`},
		{name: "custom missing field", in: `{"_lctext":"x","_lctype":1}`, err: realtime.ErrInvalidMessage, detail: "operation message: op must be a non-empty string"},
		{name: "custom validator's own error", in: `{"op":"forbidden","_lctype":1}`, err: realtime.ErrMessageRejected, detail: `op "forbidden" is not allowed`},
		{name: "custom bad known field", in: `{"op":"x","_lcattrs":1,"_lctype":1}`, err: realtime.ErrInvalidMessage, detail: "_lcattrs must be a JSON object"},
		{name: "custom without validator", in: `{"sticker":"cat","_lctype":7}`},
		{name: "custom without validator still decodes", in: `{"_lctext":[],"_lctype":7}`, err: realtime.ErrInvalidMessage, detail: "_lctext must be a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Validate(tc.in)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var e *realtime.Error
			if !errors.As(err, &e) {
				t.Fatalf("Validate = %v (%T), want *realtime.Error", err, err)
			}
			if e.Code != tc.err.Code || !strings.Contains(e.Detail, tc.detail) {
				t.Errorf("Validate = %v, want code %d with detail containing %q", e, tc.err.Code, tc.detail)
			}
		})
	}
}

func TestValidateNilRegistry(t *testing.T) {
	var r *Registry
	if err := r.Validate(`{"anything":1,"_lctype":1}`); err != nil {
		t.Errorf("nil registry rejected an unknown type: %v", err)
	}
	if err := r.Validate(`{"_lctype":-2}`); !errors.Is(err, realtime.ErrInvalidMessage) {
		t.Errorf("nil registry accepted an image without file: %v", err)
	}
}

func TestRegistryConcurrent(t *testing.T) {
	r := &Registry{}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_ = r.Register(Type(100+i), "t", func(*Message) error { return nil })
		}()
		go func() {
			defer wg.Done()
			_ = r.Validate(`{"_lctype":100}`)
		}()
	}
	wg.Wait()
	if _, ok := r.Name(107); !ok {
		t.Error("type 107 missing after concurrent Register")
	}
}

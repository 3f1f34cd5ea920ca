package wire

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestRoundTrip(t *testing.T) {
	cmd := &GenericCommand{
		Cmd:    CommandType_direct.Enum(),
		PeerId: proto.String("Tom"),
		I:      proto.Int32(7),
		DirectMessage: &DirectCommand{
			Cid:         proto.String("5f0c0c0c0c0c0c0c0c0c0c0c"),
			Msg:         proto.String(`{"_lctype":-1,"_lctext":"hi"}`),
			MentionPids: []string{"Jerry"},
			Dt:          proto.String("b1f4"),
		},
	}
	for _, b64 := range []bool{false, true} {
		frame, err := Encode(cmd, b64)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(frame, b64)
		if err != nil {
			t.Fatalf("base64=%v: %v", b64, err)
		}
		if !proto.Equal(got, cmd) {
			t.Fatalf("base64=%v: got %v, want %v", b64, got, cmd)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	valid, _ := Encode(&GenericCommand{Cmd: CommandType_echo.Enum()}, false)
	for name, tc := range map[string]struct {
		frame []byte
		b64   bool
	}{
		"empty":      {nil, false},
		"garbage":    {[]byte{0xff, 0xff, 0xff}, false},
		"bad base64": {[]byte("@@@"), true},
		"no cmd":     {[]byte{0x20, 0x01}, false}, // only i=1
		"truncated":  {valid[:len(valid)-1], false},
	} {
		t.Run(name, func(t *testing.T) {
			if len(tc.frame) > 0 && bytes.Equal(tc.frame, valid) {
				t.Skip()
			}
			if _, err := Decode(tc.frame, tc.b64); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestEncodeRequiresReason(t *testing.T) {
	// The SDK drops error frames without a reason; Encode must refuse them.
	_, err := Encode(&GenericCommand{Cmd: CommandType_error.Enum(), ErrorMessage: &ErrorCommand{Code: proto.Int32(4200)}}, false)
	if err == nil {
		t.Fatal("encoded an ErrorCommand without reason")
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range []*GenericCommand{
		{Cmd: CommandType_session.Enum(), Op: OpType_open.Enum(), PeerId: proto.String("Tom"), I: proto.Int32(1),
			SessionMessage: &SessionCommand{Ua: proto.String("js/5.0.0-rc.8"), Tag: proto.String("Web"), ConfigBitmap: proto.Int64(187)}},
		{Cmd: CommandType_direct.Enum(), DirectMessage: &DirectCommand{Cid: proto.String("c"), Msg: proto.String("hi"), MentionPids: []string{"a", "b"}}},
		{Cmd: CommandType_logs.Enum(), LogsMessage: &LogsCommand{Cid: proto.String("c"), Direction: QueryDirection_NEW.Enum()}},
		{Cmd: CommandType_conv.Enum(), Op: OpType_query.Enum(), ConvMessage: &ConvCommand{Where: &JsonObjectMessage{Data: proto.String(`{"m":"Tom"}`)}}},
	} {
		b, _ := Encode(c, false)
		f.Add(b, false)
		b64, _ := Encode(c, true)
		f.Add(b64, true)
	}
	f.Fuzz(func(t *testing.T, frame []byte, b64 bool) {
		cmd, err := Decode(frame, b64)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode and decode to the same command
		// (modulo required fields the sender left out).
		out, err := proto.MarshalOptions{AllowPartial: true}.Marshal(cmd)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again := new(GenericCommand)
		if err := unmarshal.Unmarshal(out, again); err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		if !proto.Equal(cmd, again) {
			t.Fatalf("round trip changed the command")
		}
	})
}

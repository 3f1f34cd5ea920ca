package wire

import (
	"encoding/base64"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// The two websocket subprotocols of the LeanCloud realtime service.
const (
	// ProtocolBinary carries one binary-encoded GenericCommand per binary
	// frame.
	ProtocolBinary = "lc.protobuf2.3"
	// ProtocolBase64 carries one standard-base64 GenericCommand per text
	// frame (the SDK's noBinary option, for runtimes without binary
	// websockets).
	ProtocolBase64 = "lc.proto2base64.3"
	// ProtocolBinaryV1 and ProtocolBase64V1 are the same framing for
	// clients that sync by server push: the mobile SDKs without the unread
	// notification option.
	ProtocolBinaryV1 = "lc.protobuf2.1"
	ProtocolBase64V1 = "lc.proto2base64.1"
)

// ErrEmptyFrame is returned for a frame with no bytes.
var ErrEmptyFrame = errors.New("wire: empty frame")

var (
	// Required fields are the SDK's business; a command missing one is
	// still worth answering with a coded error, so decoding allows partial
	// messages.
	unmarshal = proto.UnmarshalOptions{AllowPartial: true, DiscardUnknown: true}
	marshal   = proto.MarshalOptions{}
)

// Decode parses one frame. base64 selects the lc.proto2base64.3 text
// encoding.
func Decode(frame []byte, base64Text bool) (*GenericCommand, error) {
	if len(frame) == 0 {
		return nil, ErrEmptyFrame
	}
	raw := frame
	if base64Text {
		buf := make([]byte, base64.StdEncoding.DecodedLen(len(frame)))
		n, err := base64.StdEncoding.Decode(buf, frame)
		if err != nil {
			return nil, fmt.Errorf("wire: bad base64: %w", err)
		}
		raw = buf[:n]
	}
	cmd := new(GenericCommand)
	if err := unmarshal.Unmarshal(raw, cmd); err != nil {
		return nil, fmt.Errorf("wire: bad protobuf: %w", err)
	}
	if cmd.Cmd == nil {
		return nil, errors.New("wire: command without cmd")
	}
	return cmd, nil
}

// Encode serialises cmd for one frame. It fails when a field the SDK
// requires is missing, so that such a bug shows up in tests rather than as
// a silently dropped frame on the client.
func Encode(cmd *GenericCommand, base64Text bool) ([]byte, error) {
	raw, err := marshal.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("wire: encode %s: %w", cmd.GetCmd(), err)
	}
	if !base64Text {
		return raw, nil
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
	base64.StdEncoding.Encode(out, raw)
	return out, nil
}

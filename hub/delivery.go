package hub

import (
	"encoding/base64"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// deliverMessage pushes m to the live sessions of its recipients and to
// the sender's other sessions (all of them when from is nil: a message
// sent through the Go API reaches every device of its sender). With
// wantOffline it returns the recipients that have no live session.
func (h *Hub) deliverMessage(from *session, m *realtime.Message, to []string, wantOffline bool) (offline []string) {
	targets, offline := h.reg.sessionsAndOffline(to, m.From, wantOffline)
	for _, o := range h.reg.sessionsOf(m.From) {
		if o != from {
			targets = append(targets, o)
		}
	}
	h.fanout(directPush(m), targets, nil)
	return offline
}

// directPush is the push of a message to its recipients.
func directPush(m *realtime.Message) *wire.GenericCommand {
	d := &wire.DirectCommand{
		Id:         proto.String(m.ID),
		Cid:        proto.String(m.ConvID),
		FromPeerId: proto.String(m.From),
		Timestamp:  proto.Int64(m.Timestamp),
	}
	if m.Binary != nil {
		d.BinaryMsg = m.Binary
	} else {
		d.Msg = proto.String(m.Data)
	}
	// Always set: the SDK copies it into message.mentionedAll, which must
	// be false, not null, when nobody was mentioned.
	d.MentionAll = proto.Bool(m.MentionAll)
	if len(m.MentionPids) > 0 {
		d.MentionPids = m.MentionPids
	}
	if m.Transient {
		d.Transient = proto.Bool(true)
	}
	if m.PatchTimestamp > 0 {
		d.PatchTimestamp = proto.Int64(m.PatchTimestamp)
	}
	return &wire.GenericCommand{Cmd: wire.CommandType_direct.Enum(), DirectMessage: d}
}

// fanout encodes cmd once and queues it to every target but except.
// Sessions that may go without peerId (SDK 5.x alone on its socket,
// configBitmap bit 128) share one frame; others get the encoded bytes with
// their peerId appended (protobuf accepts fields in any order, so appending
// field 4 is the same as having set it).
func (h *Hub) fanout(cmd *wire.GenericCommand, targets []*session, except *session) {
	if len(targets) == 0 {
		return
	}
	cmd.Service = proto.Int32(2)
	cmd.ServerTs = proto.Int64(h.nowMs())
	cmd.PeerId = nil
	raw, err := proto.Marshal(cmd)
	if err != nil {
		h.log.Error("encode push", "err", err, "cmd", cmd.GetCmd().String())
		return
	}
	var shared, sharedText []byte
	for _, s := range targets {
		if s == except {
			continue
		}
		if s.mayOmitPeerID() {
			if s.c.base64 {
				if sharedText == nil {
					sharedText = base64Frame(raw)
				}
				s.c.enqueue(sharedText)
			} else {
				if shared == nil {
					shared = raw
				}
				s.c.enqueue(shared)
			}
			continue
		}
		frame := make([]byte, 0, len(raw)+len(s.clientID)+2)
		frame = append(frame, raw...)
		frame = protowire.AppendTag(frame, 4, protowire.BytesType)
		frame = protowire.AppendString(frame, s.clientID)
		if s.c.base64 {
			frame = base64Frame(frame)
		}
		s.c.enqueue(frame)
	}
}

func base64Frame(b []byte) []byte {
	out := make([]byte, base64.StdEncoding.EncodedLen(len(b)))
	base64.StdEncoding.Encode(out, b)
	return out
}

// patchItem describes a stored message's current state for a patch push.
func patchItem(m *realtime.Message, patchTime int64) *wire.PatchItem {
	p := &wire.PatchItem{
		Cid:            proto.String(m.ConvID),
		Mid:            proto.String(m.ID),
		Timestamp:      proto.Int64(m.Timestamp),
		Recall:         proto.Bool(m.Recalled),
		From:           proto.String(m.From),
		PatchTimestamp: proto.Int64(patchTime),
		MentionAll:     proto.Bool(m.MentionAll),
		MentionPids:    m.MentionPids,
	}
	if m.Binary != nil {
		p.BinaryMsg = m.Binary
	} else {
		p.Data = proto.String(m.Data)
	}
	if m.PatchCode != 0 {
		p.PatchCode = proto.Int64(int64(m.PatchCode))
		p.PatchReason = proto.String(m.PatchReason)
	}
	return p
}

func patchCommand(items []*wire.PatchItem, last int64) *wire.GenericCommand {
	return &wire.GenericCommand{Cmd: wire.CommandType_patch.Enum(), Op: wire.OpType_modify.Enum(),
		PatchMessage: &wire.PatchCommand{Patches: items, LastPatchTime: proto.Int64(last)}}
}

// notifyRewrite tells a message's sender, on all its devices, that a hook
// changed its body (MESSAGE_UPDATE with the hook's reason).
func (h *Hub) notifyRewrite(m *realtime.Message, rw *rewriteInfo) {
	patch := patchItem(m, h.nowMs())
	patch.PatchCode = proto.Int64(int64(rw.code))
	patch.PatchReason = proto.String(rw.reason)
	h.fanout(patchCommand([]*wire.PatchItem{patch}, patch.GetPatchTimestamp()), h.reg.sessionsOf(m.From), nil)
}

func without(list []string, id string) []string {
	out := make([]string, 0, len(list))
	for _, x := range list {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

func contains(list []string, id string) bool {
	for _, x := range list {
		if x == id {
			return true
		}
	}
	return false
}

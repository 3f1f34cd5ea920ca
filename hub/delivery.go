package hub

import (
	"encoding/base64"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/cluster"
	"github.com/leanhub/realtime/internal/wire"
)

// deliverLocal pushes m to this node's live sessions of its recipients
// and of its sender (all of them but from; every one when from is nil: a
// message sent through the Go API, or from another node, reaches every
// device of its sender; none with m.NoSync). With wantOffline it returns
// the recipients that have no live session on any node.
func (h *Hub) deliverLocal(from *session, m *realtime.Message, to []string, wantOffline bool) (offline []string) {
	targets, offline := h.reg.sessionsAndOffline(to, m.From, wantOffline)
	if !m.NoSync {
		for _, o := range h.reg.sessionsOf(m.From) {
			if o != from {
				targets = append(targets, o)
			}
		}
	}
	if m.Seq > 0 {
		// A session whose login sync reports the message gets it from
		// the sync only.
		targets = slices.DeleteFunc(targets, func(t *session) bool { return !t.admitStored(m) })
	}
	h.fanout(directPush(m), targets, nil)
	h.cfg.Metrics.MessageDelivered(len(targets))
	if h.cl != nil && len(offline) > 0 {
		offline = h.cl.remote.offline(offline)
	}
	return offline
}

// deliverLive delivers a message that is not stored (transient, will) on
// every node.
func (h *Hub) deliverLive(from *session, m *realtime.Message, to []string, room bool) {
	h.deliverLocal(from, m, to, false)
	if h.cl != nil {
		h.cl.publishMessage(cluster.KindLive, m, to, room)
	}
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

// audience is who gets a push, on every node: the sessions of clients
// (but skip's), or of the members of conv; with groupOnly only the
// sessions that asked for group receipts.
type audience struct {
	clients   []string
	conv      *convSnap
	skip      string
	groupOnly bool
}

// localTargets are this node's sessions in a.
func (h *Hub) localTargets(a audience) []*session {
	if a.conv != nil && a.groupOnly {
		// Few sessions ask for group receipts: look at those, not at
		// every member.
		var out []*session
		for _, t := range h.reg.groupReceiptSessions() {
			if t.clientID != a.skip && a.conv.isMember(t.clientID) {
				out = append(out, t)
			}
		}
		return out
	}
	clients := a.clients
	if a.conv != nil {
		clients = a.conv.conv.Members
	}
	out := h.reg.sessionsOfAll(clients, a.skip)
	if a.groupOnly {
		out = slices.DeleteFunc(out, func(s *session) bool { return !s.groupReceipts() })
	}
	return out
}

// tell pushes cmd to its audience on every node, but not to except.
func (h *Hub) tell(cmd *wire.GenericCommand, a audience, except *session) {
	targets := h.localTargets(a)
	if len(targets) == 0 && h.cl == nil {
		return
	}
	raw := h.encodePush(cmd)
	if raw == nil {
		return
	}
	h.fanoutRaw(raw, targets, except)
	if h.cl != nil {
		h.cl.publishPush(raw, a)
	}
}

// fanout encodes cmd once and queues it to every target but except.
func (h *Hub) fanout(cmd *wire.GenericCommand, targets []*session, except *session) {
	if len(targets) == 0 {
		return
	}
	if raw := h.encodePush(cmd); raw != nil {
		h.fanoutRaw(raw, targets, except)
	}
}

// encodePush encodes a server push (without peerId); nil if it cannot be
// encoded.
func (h *Hub) encodePush(cmd *wire.GenericCommand) []byte {
	cmd.Service = proto.Int32(2)
	cmd.ServerTs = proto.Int64(h.nowMs())
	cmd.PeerId = nil
	raw, err := proto.Marshal(cmd)
	if err != nil {
		h.log.Error("encode push", "err", err, "cmd", cmd.GetCmd().String())
		return nil
	}
	return raw
}

// fanoutRaw queues an encoded push to every target but except. Sessions
// that may go without peerId (SDK 5.x alone on its socket, configBitmap
// bit 128) share one frame; others get the encoded bytes with their
// peerId appended (protobuf accepts fields in any order, so appending
// field 4 is the same as having set it).
func (h *Hub) fanoutRaw(raw []byte, targets []*session, except *session) {
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
	h.tell(patchCommand([]*wire.PatchItem{patch}, patch.GetPatchTimestamp()), audience{clients: []string{m.From}}, nil)
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

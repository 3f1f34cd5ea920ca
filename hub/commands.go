package hub

import (
	"encoding/json"
	"fmt"
	"runtime/debug"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// The websocket commands: each handler translates a wire command into an
// engine operation (or a read) and its result back into the reply the SDK
// expects. Nothing here changes state itself.

// dispatch handles one decoded command on the socket's read loop. Work
// that waits for the store or a hook runs in a conversation's lane or in
// the task pool, never here. A panic in a handler is logged and answered
// with 4200; the socket and the hub go on.
func (c *conn) dispatch(req *wire.GenericCommand) {
	h := c.h
	defer func() {
		if r := recover(); r != nil {
			h.log.Error("panic handling command", "cmd", req.GetCmd().String(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.sendError(req, realtime.ErrInternal)
		}
	}()
	cmd := req.GetCmd()
	h.cfg.Metrics.Command(cmd.String())
	if !(cmd == wire.CommandType_session && req.GetOp() == wire.OpType_open) {
		c.waitOpening(req.GetPeerId())
	}
	switch cmd {
	case wire.CommandType_session:
		h.handleSession(c, req)
		return
	case wire.CommandType_echo:
		if req.I != nil {
			c.reply(req, &wire.GenericCommand{})
		}
		return
	}
	s := c.session(req.GetPeerId())
	if s == nil {
		c.sendError(req, realtime.ErrSessionRequired)
		return
	}
	if req.PeerId == nil && !s.peerless.Load() {
		s.peerless.Store(true)
	}
	switch cmd {
	case wire.CommandType_direct:
		h.cmdDirect(s, req)
	case wire.CommandType_ack:
		h.cmdAck(s, req)
	case wire.CommandType_read:
		h.cmdRead(s, req)
	case wire.CommandType_logs:
		h.cmdLogs(s, req)
	case wire.CommandType_conv:
		h.cmdConv(s, req)
	case wire.CommandType_patch:
		h.cmdPatch(s, req)
	case wire.CommandType_blacklist:
		h.cmdBlacklist(s, req)
	default:
		c.sendError(req, realtime.ErrInvalidCommand.WithDetail("unsupported command %s", cmd))
	}
}

// async runs f off the read loop, in the socket's serial queue.
func (s *session) async(f func()) { s.c.serial(f) }

// ackError answers a direct command with a coded ack, the way the SDK
// expects send failures.
func ackError(s *session, req *wire.GenericCommand, err error) {
	e := realtime.AsError(err)
	ack := &wire.AckCommand{Code: proto.Int32(int32(e.Code)), Reason: proto.String(e.Reason)}
	if e.AppCode != 0 {
		ack.AppCode = proto.Int32(int32(e.AppCode))
	}
	if e.Detail != "" {
		ack.AppMsg = proto.String(e.Detail)
	}
	s.c.reply(req, &wire.GenericCommand{Cmd: wire.CommandType_ack.Enum(), AckMessage: ack})
}

func ackSent(s *session, req *wire.GenericCommand, m *realtime.Message) {
	s.c.reply(req, &wire.GenericCommand{Cmd: wire.CommandType_ack.Enum(),
		AckMessage: &wire.AckCommand{Uid: proto.String(m.ID), T: proto.Int64(m.Timestamp)}})
}

func (h *Hub) cmdDirect(s *session, req *wire.GenericCommand) {
	d := req.GetDirectMessage()
	if d == nil || d.GetCid() == "" {
		ackError(s, req, realtime.ErrInvalidTarget.WithDetail("missing conversation id"))
		return
	}
	if !h.limits.allow(s.clientID, famSend, 1) {
		ackError(s, req, realtime.ErrRateLimited)
		return
	}
	if !s.c.begin() {
		return
	}
	r := &sendRequest{
		from: s,
		msg: &realtime.Message{
			ConvID:      d.GetCid(),
			From:        s.clientID,
			Data:        d.GetMsg(),
			Binary:      d.GetBinaryMsg(),
			ClientMsgID: d.GetDt(),
			MentionAll:  d.GetMentionAll(),
			MentionPids: d.GetMentionPids(),
			Receipt:     d.GetR(),
			Transient:   d.GetTransient(),
		},
		will:     d.GetWill(),
		sourceIP: s.c.remoteIP,
		done: func(m *realtime.Message, err error) {
			defer s.c.end()
			if err != nil {
				ackError(s, req, err)
				return
			}
			ackSent(s, req, m)
		},
	}
	if pd := d.GetPushData(); pd != "" {
		r.pushData = json.RawMessage(pd)
	}
	h.eng.send(r)
}

// cmdAck records a client's delivery acknowledgement {cid, fromts, tots}.
func (h *Hub) cmdAck(s *session, req *wire.GenericCommand) {
	a := req.GetAckMessage()
	if a == nil || a.GetCid() == "" {
		return
	}
	if !h.limits.allow(s.clientID, famRead, 1) {
		return
	}
	tots := a.GetTots()
	if tots <= 0 {
		tots = a.GetT()
	}
	h.eng.ack(s.clientID, a.GetCid(), a.GetFromts(), tots)
}

// maxReadTuples caps the conversations one read command marks.
const maxReadTuples = 200

// cmdRead moves read cursors: one tuple per conversation (the newest
// wins), a bounded number per command.
func (h *Hub) cmdRead(s *session, req *wire.GenericCommand) {
	r := req.GetReadMessage()
	if r == nil {
		return
	}
	byConv := map[string]int{}
	var tuples []*wire.ReadTuple
	add := func(t *wire.ReadTuple) {
		if t.GetCid() == "" {
			return
		}
		if i, ok := byConv[t.GetCid()]; ok {
			if old := tuples[i]; t.GetTimestamp() > old.GetTimestamp() || t.GetTimestamp() == 0 {
				tuples[i] = t
			}
			return
		}
		if len(tuples) >= maxReadTuples {
			return
		}
		byConv[t.GetCid()] = len(tuples)
		tuples = append(tuples, t)
	}
	for _, t := range r.GetConvs() {
		add(t)
	}
	for _, cid := range append(r.GetCids(), r.GetCid()) {
		add(&wire.ReadTuple{Cid: proto.String(cid)})
	}
	if len(tuples) == 0 || !h.limits.allow(s.clientID, famRead, len(tuples)) {
		return
	}
	for _, t := range tuples {
		h.eng.read(readRequest{convID: t.GetCid(), ts: t.GetTimestamp(), from: s, client: s.clientID})
	}
}

package hub

import (
	"fmt"
	"runtime/debug"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// dispatch handles one decoded command. A panic in a handler is logged and
// answered with 4200; the socket and the hub go on.
func (c *conn) dispatch(req *wire.GenericCommand) {
	h := c.h
	defer func() {
		if r := recover(); r != nil {
			h.log.Error("panic handling command", "cmd", req.GetCmd().String(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.sendError(req, realtime.ErrInternal)
		}
	}()
	cmd := req.GetCmd()
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
	switch cmd {
	case wire.CommandType_direct:
		h.handleDirect(s, req)
	case wire.CommandType_ack:
		h.handleAck(s, req)
	case wire.CommandType_read:
		h.handleRead(s, req)
	case wire.CommandType_logs:
		h.handleLogs(s, req)
	case wire.CommandType_conv:
		h.handleConv(s, req)
	case wire.CommandType_patch:
		h.handlePatch(s, req)
	default:
		c.sendError(req, realtime.ErrInvalidCommand.WithDetail("unsupported command %s", cmd))
	}
}

package hub

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// patchRequest is an edit or recall of a stored message.
type patchRequest struct {
	from   *session // the asking session; nil for the Go API
	client string   // who asks (the sender, unless system)
	system bool     // the application edits: no ownership check, no DisableEdit
	patch  realtime.Patch
	// sender and timestamp, when set, must be the message's (the REST
	// API names a message by its sender, timestamp and id, as LeanCloud
	// did): otherwise the message is not found.
	sender    string
	timestamp int64
}

// patch is the one path of every edit and recall: the checks (switches,
// ownership, membership, sizes, mentions, typed bodies), the
// MessageUpdate hooks, the store write and the patch pushes, in the
// conversation's lane. It returns the message as stored.
func (e *engine) patch(ctx context.Context, r patchRequest) (*realtime.Message, error) {
	h := e.h
	p := &r.patch
	if !r.system {
		if p.Recall && h.cfg.DisableRecall {
			return nil, realtime.ErrMessageRecallDisabled
		}
		if !p.Recall && h.cfg.DisableEdit {
			return nil, realtime.ErrMessageEditDisabled
		}
	}
	if !p.Recall {
		if err := h.checkBody(p.Data, p.Binary, p.MentionPids); err != nil {
			return nil, err
		}
	}
	type result struct {
		m   *realtime.Message
		err error
	}
	ch := make(chan result, 1)
	err := e.do(p.ConvID, func(c *convEntry, s *convSnap, err error) {
		if err != nil {
			if errors.Is(err, realtime.ErrConvNotFound) {
				err = realtime.ErrMessageNotFound
			}
			ch <- result{nil, err}
			return
		}
		m, err := e.patchInLane(s, r)
		ch <- result{m, err}
	})
	if err != nil {
		return nil, err
	}
	select {
	case res := <-ch:
		return res.m, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *engine) patchInLane(s *convSnap, r patchRequest) (*realtime.Message, error) {
	h := e.h
	p := r.patch
	ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
	defer cancel()
	orig, err := h.store.GetMessage(ctx, s.conv.ID, p.MessageID)
	if err != nil {
		return nil, err
	}
	if (r.sender != "" && orig.From != r.sender) || (r.timestamp != 0 && orig.Timestamp != r.timestamp) {
		return nil, realtime.ErrMessageNotFound.WithDetail("no message %s from %s at %d", p.MessageID, r.sender, r.timestamp)
	}
	if !r.system {
		if orig.From != r.client {
			return nil, realtime.ErrMessageOwnership
		}
		if !h.isMember(s, r.client) {
			return nil, realtime.ErrConvMembershipNeeded
		}
	}
	if orig.Recalled {
		return nil, realtime.ErrMessageNotFound.WithDetail("the message was recalled")
	}
	for _, id := range p.MentionPids {
		if !s.isMember(id) {
			return nil, realtime.ErrInvalidMessage.WithDetail("mentioned client %q is not a member", id)
		}
	}
	p.ConvID, p.MessageID = s.conv.ID, orig.ID
	p.From, p.System = r.client, r.system
	to := h.recipients(s, orig.From)
	if err := h.messageUpdate(ctx, &realtime.MessageUpdateEvent{Conversation: s.conv, Original: orig, Patch: &p, To: to}, &to); err != nil {
		return nil, err
	}
	if !p.Recall {
		// A hook may have rewritten the body: the limits hold for it too.
		if err := h.checkBody(p.Data, p.Binary, p.MentionPids); err != nil {
			return nil, err
		}
	}
	m, err := h.store.PatchMessage(ctx, p)
	if err != nil {
		return nil, err
	}
	// The recipients and every other device of the sender.
	h.tell(patchCommand([]*wire.PatchItem{patchItem(m, m.PatchTimestamp)}, m.PatchTimestamp),
		audience{clients: append(without(to, orig.From), orig.From)}, r.from)
	return m, nil
}

// maxPatchItems caps the edits and recalls of one patch command.
const maxPatchItems = 100

// cmdPatch edits or recalls messages (patch/modify). Items are applied in
// order; the first refusal stops the command (earlier items stay applied:
// the SDK sends one item per command).
func (h *Hub) cmdPatch(s *session, req *wire.GenericCommand) {
	if req.GetOp() != wire.OpType_modify {
		s.c.sendError(req, realtime.ErrInvalidCommand.WithDetail("unsupported patch op %s", req.GetOp()))
		return
	}
	items := req.GetPatchMessage().GetPatches()
	if len(items) == 0 {
		s.c.sendError(req, realtime.ErrInvalidCommand.WithDetail("no patches"))
		return
	}
	if len(items) > maxPatchItems {
		s.c.sendError(req, realtime.ErrInvalidCommand.WithDetail("at most %d patches per command", maxPatchItems))
		return
	}
	if !h.limits.allow(s.clientID, famPatch, len(items)) {
		s.c.sendError(req, realtime.ErrRateLimited)
		return
	}
	s.async(func() {
		ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
		defer cancel()
		last := int64(0)
		for _, it := range items {
			m, err := h.eng.patch(ctx, patchRequest{from: s, client: s.clientID, patch: realtime.Patch{
				ConvID: it.GetCid(), MessageID: it.GetMid(), Recall: it.GetRecall(),
				Data: it.GetData(), Binary: it.GetBinaryMsg(), MentionAll: it.GetMentionAll(), MentionPids: it.GetMentionPids(),
			}})
			if err != nil {
				s.c.sendError(req, err)
				return
			}
			last = max(last, m.PatchTimestamp)
		}
		s.c.reply(req, &wire.GenericCommand{Op: wire.OpType_modified.Enum(), PatchMessage: &wire.PatchCommand{LastPatchTime: proto.Int64(last)}})
	})
}

package hooks

import (
	"context"

	"github.com/leanhub/realtime"
)

// Chain returns a MessageReceivedHook that runs hooks in order as one hook.
// The hub already runs the hooks of its list in order with the same rules;
// Chain is for handing out several hooks as one value (a library's policy, a
// test) and for giving them one timeout and one failure between them: the
// hub times and counts the chain as a single hook.
//
// Each hook sees the message as the hooks before it left it (body and
// recipients rewritten, the event otherwise shared). The first drop or error
// stops the chain and is returned as is. Otherwise the results are merged:
// the final body is returned with the PatchCode and PatchReason of the last
// hook that changed it (a Data equal to the body a hook saw is no change),
// and the last recipient list wins. The result is nil when no hook changed
// anything. Nil hooks are skipped.
func Chain(hooks ...realtime.MessageReceivedHook) realtime.MessageReceivedHook {
	hs := make([]realtime.MessageReceivedHook, 0, len(hooks))
	for _, h := range hooks {
		if h != nil {
			hs = append(hs, h)
		}
	}
	return chain(hs)
}

type chain []realtime.MessageReceivedHook

func (c chain) MessageReceived(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
	var merged *realtime.MessageReceivedResult
	cur := ev
	for _, h := range c {
		res, err := h.MessageReceived(ctx, cur)
		if err != nil {
			return nil, err
		}
		if res == nil {
			continue
		}
		if res.Drop {
			return res, nil
		}
		data := res.Data
		if data != nil && cur.Message != nil && *data == cur.Message.Data {
			data = nil // an unchanged body is no rewrite, as in the hub
		}
		if data == nil && res.To == nil {
			continue
		}
		if merged == nil {
			merged = new(realtime.MessageReceivedResult)
		}
		// Later hooks get a copy of the event: the caller's event and
		// message stay as the hub made them.
		next := *cur
		if data != nil {
			body := *data
			merged.Data = &body
			merged.PatchCode, merged.PatchReason = res.PatchCode, res.PatchReason
			if cur.Message != nil {
				msg := *cur.Message
				msg.Data = body
				next.Message = &msg
			}
		}
		if res.To != nil {
			merged.To = res.To
			next.To = res.To
		}
		cur = &next
	}
	return merged, nil
}

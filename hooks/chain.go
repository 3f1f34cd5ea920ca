package hooks

import (
	"context"

	"github.com/leanhub/realtime"
)

// Chain returns a MessageReceivedHook that runs hooks in order, as one hook
// with one place in the hub's hook list: for example a keyword filter first,
// then an app hook that must see the filtered text.
//
// Each hook sees the message as the hooks before it left it (body and
// recipients rewritten, the event otherwise shared). The first drop or error
// stops the chain and is returned as is. Otherwise the results are merged:
// the last rewritten body wins together with its PatchCode and PatchReason,
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
		if res.Data == nil && res.To == nil {
			continue
		}
		if merged == nil {
			merged = new(realtime.MessageReceivedResult)
		}
		// Later hooks get a copy of the event: the caller's event and
		// message stay as the hub made them.
		next := *cur
		if res.Data != nil {
			data := *res.Data
			merged.Data = &data
			merged.PatchCode, merged.PatchReason = res.PatchCode, res.PatchReason
			if cur.Message != nil {
				msg := *cur.Message
				msg.Data = data
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

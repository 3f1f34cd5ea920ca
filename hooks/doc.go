// Package hooks has ready-made hooks for the hub: a keyword filter
// (LeanCloud's built-in filter that rewrites messages with patch code
// -4408) and Chain, which runs several message hooks as one.
//
// A hook is any value implementing one or more of the realtime.*Hook
// interfaces (realtime.MessageReceivedHook, realtime.MessageUpdateHook, ...).
// Give the hub a list of them; hub.New type-asserts each value once for
// every interface it implements, so one value can serve several events:
//
//	filter, err := hooks.LoadKeywordFile("keywords.txt", nil)
//	if err != nil {
//		return err
//	}
//	noLinks := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
//		if strings.Contains(ev.Message.Data, "http://") {
//			return nil, realtime.Reject(1001, "links are not allowed")
//		}
//		return nil, nil
//	})
//	h, err := hub.New(store, &hub.Config{Hooks: []any{filter, noLinks}})
//
// Here filter rewrites new messages and edits (it implements both
// MessageReceivedHook and MessageUpdateHook), and noLinks refuses messages
// with links: the sender's send fails with 4402 and appCode 1001. The hub
// runs hooks of one event in the order of the list, each seeing the
// previous one's rewrite, so noLinks sees the filtered text.
// Reload the word list at run time with filter.ReloadFile, for example on
// SIGHUP; sending goes on meanwhile.
//
// Every hook here is safe for concurrent use: the hub calls hooks of
// different conversations at the same time.
package hooks

package hooks_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hooks"
)

func ExampleKeywordFilter() {
	filter := hooks.NewKeywordFilter([]string{"badword", "坏话"}, nil)

	text, changed := filter.Filter("你好BadWord，别说坏话")
	fmt.Println(text, changed)

	// As a hook: a typed message gets only its _lctext filtered.
	ev := &realtime.MessageEvent{Message: &realtime.Message{
		Data: `{"_lctype":-1,"_lctext":"你好badword","_lcattrs":{"badword":true}}`,
	}}
	res, _ := filter.MessageReceived(context.Background(), ev)
	fmt.Println(*res.Data)
	fmt.Println(res.PatchCode, res.PatchReason)
	// Output:
	// 你好***，别说*** true
	// {"_lctype":-1,"_lctext":"你好***","_lcattrs":{"badword":true}}
	// -4408 message contains filtered keywords
}

func ExampleKeywordFilter_Reload() {
	filter := hooks.NewKeywordFilter([]string{"spam"}, &hooks.KeywordFilterOptions{Replacement: "[removed]"})
	fmt.Println(filter.Filter("spam and eggs"))
	filter.Reload([]string{"eggs"})
	fmt.Println(filter.Filter("spam and eggs"))
	// Output:
	// [removed] and eggs true
	// spam and [removed] true
}

func Example_rejectMessage() {
	// An app hook that refuses messages to a conversation being archived;
	// the sender's send fails with 4402, appCode 1001 and the detail.
	archived := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
		if strings.HasPrefix(ev.Conversation.Name, "[archived]") {
			return nil, realtime.Reject(1001, "conversation is archived")
		}
		return nil, nil
	})
	ev := &realtime.MessageEvent{
		Conversation: &realtime.Conversation{Name: "[archived] team"},
		Message:      &realtime.Message{Data: "hello"},
	}
	_, err := archived.MessageReceived(context.Background(), ev)
	var rej *realtime.Rejection
	if errors.As(err, &rej) {
		fmt.Println(rej.AppCode, rej.Detail)
	}
	// Output:
	// 1001 conversation is archived
}

func ExampleChain() {
	filter := hooks.NewKeywordFilter([]string{"darn"}, nil)
	// Runs after the filter, so it sees the filtered text.
	shout := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
		if strings.HasSuffix(ev.Message.Data, "!!!") {
			return &realtime.MessageReceivedResult{Drop: true, AppCode: 1002, Detail: "calm down"}, nil
		}
		data := strings.ToUpper(ev.Message.Data)
		return &realtime.MessageReceivedResult{Data: &data, PatchCode: 7, PatchReason: "shouted"}, nil
	})
	hook := hooks.Chain(filter, shout)

	res, _ := hook.MessageReceived(context.Background(), &realtime.MessageEvent{Message: &realtime.Message{Data: "darn it"}})
	fmt.Println(*res.Data, res.PatchCode, res.PatchReason)
	res, _ = hook.MessageReceived(context.Background(), &realtime.MessageEvent{Message: &realtime.Message{Data: "darn!!!"}})
	fmt.Println(res.Drop, res.AppCode, res.Detail)
	// Output:
	// *** IT 7 shouted
	// true 1002 calm down
}

package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/leanhub/realtime"
	"github.com/leanhub/realtime/store"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "realtime-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	s, err := store.Open(ctx, "file:"+filepath.Join(dir, "chat.db"), nil)
	if err != nil {
		panic(err)
	}
	defer s.Close()

	conv, _, err := s.CreateConversation(ctx, &realtime.Conversation{
		Name: "tea", Creator: "alice", Members: []string{"bob", "alice"},
	})
	if err != nil {
		panic(err)
	}
	res, err := s.AppendMessages(ctx, []*realtime.Message{
		{ConvID: conv.ID, From: "alice", Data: "hello", ClientMsgID: "a-1"},
		{ConvID: conv.ID, From: "alice", Data: "hello", ClientMsgID: "a-1"}, // a retry
		{ConvID: conv.ID, From: "mallory", Data: "hi"},
	})
	if err != nil {
		panic(err)
	}
	for _, r := range res {
		if r.Err != nil {
			fmt.Println("error:", r.Err)
			continue
		}
		fmt.Println("seq", r.Message.Seq, "duplicate", r.Duplicate)
	}
	unread, err := s.Unread(ctx, "bob", 0, 0)
	if err != nil {
		panic(err)
	}
	fmt.Println("bob:", unread[0].Unread, "unread, last:", unread[0].Last.Data)
	// Output:
	// seq 1 duplicate false
	// seq 1 duplicate true
	// error: realtime: 4401 INVALID_MESSAGING_TARGET: mallory is not a member of the conversation
	// bob: 1 unread, last: hello
}

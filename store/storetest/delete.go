package storetest

import (
	"testing"
	"time"

	"github.com/leanhub/realtime"
)

func ids(msgs []*realtime.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func sameIDs(t *testing.T, what string, got []*realtime.Message, want ...*realtime.Message) {
	t.Helper()
	g, w := ids(got), ids(want)
	if len(g) != len(w) {
		t.Fatalf("%s: got %v, want %v", what, g, w)
	}
	for i := range g {
		if g[i] != w[i] {
			t.Fatalf("%s: got %v, want %v", what, g, w)
		}
	}
}

func testDeleteConversation(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b")
	other := group(t, s, "a", "c")
	text(t, s, c.ID, "a", "hi")
	keep := text(t, s, other.ID, "a", "kept")
	if _, _, err := s.Block(ctx(t), c.ID, []string{"z"}); err != nil {
		t.Fatalf("Block: %v", err)
	}
	if err := s.Silence(ctx(t), c.ID, []string{"b"}, time.Time{}); err != nil {
		t.Fatalf("Silence: %v", err)
	}
	if err := s.DeleteConversation(ctx(t), c.ID); err != nil {
		t.Fatalf("DeleteConversation: %v", err)
	}
	_, err := s.GetConversation(ctx(t), c.ID)
	wantErr(t, "GetConversation after delete", err, realtime.ErrConvNotFound)
	wantErr(t, "DeleteConversation twice", s.DeleteConversation(ctx(t), c.ID), realtime.ErrConvNotFound)
	wantErr(t, "DeleteConversation malformed", s.DeleteConversation(ctx(t), "nope"), realtime.ErrConvNotFound)
	if h, err := s.History(ctx(t), realtime.HistoryQuery{ConvID: c.ID}); err != nil || len(h) != 0 {
		t.Fatalf("History after delete = %v, %v; want none", ids(h), err)
	}
	if convs, err := s.QueryConversations(ctx(t), realtime.ConversationQuery{Member: "b"}); err != nil || len(convs) != 0 {
		t.Fatalf("b's conversations after delete: %d, %v; want none", len(convs), err)
	}
	if u, err := s.Unread(ctx(t), "b", 0, 0); err != nil || len(u) != 0 {
		t.Fatalf("b's unread after delete: %v, %v", u, err)
	}
	res, err := s.AppendMessages(ctx(t), []*realtime.Message{{ConvID: c.ID, From: "a", Data: "late"}})
	if err != nil {
		t.Fatalf("AppendMessages: %v", err)
	}
	wantErr(t, "append to a deleted conversation", res[0].Err, realtime.ErrConvNotFound)
	if got, err := s.GetMessage(ctx(t), other.ID, keep.ID); err != nil || got.Data != "kept" {
		t.Fatalf("the other conversation's message: %v, %v", got, err)
	}
}

func testDeleteMessage(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b")
	m1 := text(t, s, c.ID, "a", "one")
	m2 := text(t, s, c.ID, "b", "two")
	wantErr(t, "DeleteMessage in another conversation", s.DeleteMessage(ctx(t), group(t, s, "x", "y").ID, m1.ID), realtime.ErrMessageNotFound)
	if err := s.DeleteMessage(ctx(t), c.ID, m2.ID); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	wantErr(t, "DeleteMessage twice", s.DeleteMessage(ctx(t), c.ID, m2.ID), realtime.ErrMessageNotFound)
	_, err := s.GetMessage(ctx(t), c.ID, m2.ID)
	wantErr(t, "GetMessage after delete", err, realtime.ErrMessageNotFound)
	h, err := s.History(ctx(t), realtime.HistoryQuery{ConvID: c.ID})
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	sameIDs(t, "history after delete", h, m1)
	m3 := text(t, s, c.ID, "a", "three")
	if m3.Seq <= m2.Seq || m3.Timestamp <= m2.Timestamp {
		t.Fatalf("after deleting the newest message, the next got seq %d ts %d; the deleted had %d %d",
			m3.Seq, m3.Timestamp, m2.Seq, m2.Timestamp)
	}
}

func testAppHistory(t *testing.T, s realtime.Store) {
	c1 := group(t, s, "a", "b")
	c2 := group(t, s, "a", "c")
	var all []*realtime.Message
	for i := range 6 {
		conv, from := c1.ID, "a"
		if i%2 == 1 {
			conv, from = c2.ID, "c"
		}
		all = append(all, text(t, s, conv, from, "m"))
		tick()
	}
	got, err := s.AppHistory(ctx(t), realtime.HistoryQuery{Limit: 100})
	if err != nil {
		t.Fatalf("AppHistory: %v", err)
	}
	sameIDs(t, "app history", got, all...)
	got, _ = s.AppHistory(ctx(t), realtime.HistoryQuery{Limit: 2})
	sameIDs(t, "app history, 2 newest", got, all[4:]...)
	got, _ = s.AppHistory(ctx(t), realtime.HistoryQuery{Start: all[4].Timestamp, StartMessageID: all[4].ID, Limit: 2})
	sameIDs(t, "app history before the 5th", got, all[2:4]...)
	got, _ = s.AppHistory(ctx(t), realtime.HistoryQuery{Direction: realtime.Newer, Start: all[1].Timestamp, StartMessageID: all[1].ID,
		StartInclusive: true, Limit: 2})
	sameIDs(t, "app history from the 2nd on", got, all[1:3]...)
	got, _ = s.AppHistory(ctx(t), realtime.HistoryQuery{From: "c", Limit: 100})
	sameIDs(t, "c's messages", got, all[1], all[3], all[5])
	got, _ = s.AppHistory(ctx(t), realtime.HistoryQuery{From: "a", End: all[0].Timestamp, Limit: 100})
	sameIDs(t, "a's messages after the first", got, all[2], all[4])
	got, _ = s.History(ctx(t), realtime.HistoryQuery{ConvID: c2.ID, From: "a"})
	sameIDs(t, "History From filter", got)
	got, _ = s.History(ctx(t), realtime.HistoryQuery{ConvID: c2.ID, From: "c", Limit: 1})
	sameIDs(t, "History From filter, newest", got, all[5])
}

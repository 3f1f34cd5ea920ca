package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/leanhub/realtime"
	"github.com/leanhub/realtime/store"
)

func eachDB(t *testing.T, f func(t *testing.T, s *store.SQL)) {
	t.Run("sqlite", func(t *testing.T) { f(t, openSQLite(t, nil)) })
	t.Run("postgres", func(t *testing.T) { f(t, openPG(t, nil)) })
}

// Imports keep ids and timestamps, are upserts by id, and leave the store
// appending after them.
func TestImport(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
		created := time.UnixMilli(1_600_000_000_000)
		convs := []realtime.Conversation{
			{ID: "5a5ecde6c3422b738c8779d7", Name: "Tom & 杰瑞", Creator: "tom", Members: []string{"tom", "jerry", "tom"},
				Attrs: json.RawMessage(`{"type":"private","attr":{"x":1}}`), Unique: true, CreatedAt: created, UpdatedAt: created},
			{ID: "5a5ecde6c3422b738c8779d8", Name: "same members", Members: []string{"jerry", "tom"}, Unique: true, CreatedAt: created},
			{ID: "5a5ecde6c3422b738c8779d9", Name: "room", Transient: true, CreatedAt: created},
			{ID: "not-an-id", Members: []string{"tom"}},
		}
		ok, errs, err := s.ImportConversations(ctx, convs)
		if err != nil {
			t.Fatal(err)
		}
		if !ok[0] || !ok[1] || !ok[2] || ok[3] || errs[3] == nil || errs[0] != nil {
			t.Fatalf("created %v, errs %v", ok, errs)
		}
		ok, errs, err = s.ImportConversations(ctx, convs[:3])
		if err != nil || ok[0] || ok[1] || ok[2] || errs[0] != nil {
			t.Fatalf("second import: created %v, errs %v, %v", ok, errs, err)
		}
		c, err := s.GetConversation(ctx, convs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Name != "Tom & 杰瑞" || len(c.Members) != 2 || !c.CreatedAt.Equal(created) || !c.Unique {
			t.Fatalf("conversation %+v", c)
		}
		// The unique key belongs to the first; creating it again finds it.
		again, fresh, err := s.CreateConversation(ctx, &realtime.Conversation{Members: []string{"tom", "jerry"}, Unique: true})
		if err != nil || fresh || again.ID != convs[0].ID {
			t.Fatalf("unique create: %v %v %v", again, fresh, err)
		}

		conv := convs[0].ID
		msgs := []realtime.Message{
			{ID: "qNkRkFWOeSqP65S9fDyHJw", ConvID: conv, From: "tom", Data: "你好 👋", Timestamp: 1_600_000_001_000},
			{ID: "vdkGm4dtRNmhQ5gqUTFBiA", ConvID: conv, From: "jerry", Binary: []byte{0, 1, 2}, Timestamp: 1_600_000_002_000,
				MentionPids: []string{"tom"}},
			{ID: "recalled00000000000001", ConvID: conv, From: "tom", Data: `{"_lctype":-1,"_lctext":"oops"}`,
				Recalled: true, PatchTimestamp: 1_600_000_004_000, Timestamp: 1_600_000_003_000},
			{ID: "bad id", ConvID: conv, From: "tom", Data: "x", Timestamp: 1_600_000_005_000},
			{ID: "unknownconv00000000001", ConvID: "5a5ecde6c3422b738c8779da", From: "tom", Data: "x", Timestamp: 1},
		}
		res, err := s.ImportMessages(ctx, msgs)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if res[i].Err != nil || res[i].Duplicate || res[i].Message.Seq != int64(i+1) {
				t.Fatalf("result %d: %+v", i, res[i])
			}
		}
		if res[3].Err == nil || !errors.Is(res[4].Err, realtime.ErrConvNotFound) {
			t.Fatalf("bad messages: %v, %v", res[3].Err, res[4].Err)
		}
		// A second run: duplicates, nothing written.
		res, err = s.ImportMessages(ctx, msgs[:3])
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if !res[i].Duplicate || res[i].Message.ID != msgs[i].ID || res[i].Message.Seq != int64(i+1) {
				t.Fatalf("second run %d: %+v", i, res[i])
			}
		}
		// Not newer than the head, or an id of another conversation.
		res, err = s.ImportMessages(ctx, []realtime.Message{
			{ID: "older00000000000000001", ConvID: conv, From: "tom", Data: "late", Timestamp: 1_600_000_000_500},
			{ID: "qNkRkFWOeSqP65S9fDyHJw", ConvID: convs[1].ID, From: "tom", Data: "x", Timestamp: 1_600_000_009_000},
		})
		if err != nil || res[0].Err == nil || res[1].Err == nil {
			t.Fatalf("conflicts: %+v, %v", res, err)
		}

		hist, err := s.History(ctx, realtime.HistoryQuery{ConvID: conv, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 3 || hist[0].ID != msgs[0].ID || hist[0].Timestamp != msgs[0].Timestamp || hist[0].Data != "你好 👋" ||
			string(hist[1].Binary) != "\x00\x01\x02" || !hist[2].Recalled || hist[2].Data != realtime.RecalledBody ||
			hist[2].PatchTimestamp != 1_600_000_004_000 {
			t.Fatalf("history %+v", hist)
		}
		if m, err := s.GetMessage(ctx, conv, "vdkGm4dtRNmhQ5gqUTFBiA"); err != nil || m.Seq != 2 {
			t.Fatalf("GetMessage: %+v %v", m, err)
		}
		if typed, _ := s.History(ctx, realtime.HistoryQuery{ConvID: conv, Type: -127}); len(typed) != 1 {
			t.Fatalf("recalled by _lctype: %d", len(typed))
		}
		// Nobody has read anything yet: cursors are at 0; tom was mentioned.
		u, err := s.Unread(ctx, "tom", 0, 0)
		if err != nil || len(u) != 1 || u[0].Unread != 3 || !u[0].Mentioned || u[0].Last.ID != msgs[2].ID {
			t.Fatalf("unread %+v %v", u, err)
		}
		// Appending continues the conversation after the imported head.
		ar, err := s.AppendMessages(ctx, []*realtime.Message{{ConvID: conv, From: "jerry", Data: "new"}})
		if err != nil || ar[0].Err != nil {
			t.Fatal(err, ar)
		}
		if ar[0].Message.Seq != 4 || ar[0].Message.Timestamp <= msgs[2].Timestamp {
			t.Fatalf("append after import: %+v", ar[0].Message)
		}
	})
}

// The append writer's cached head of a conversation is forgotten when an
// import moves it: the next append continues after the imported messages.
func TestImportAfterAppend(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
		id := "5a5ecde6c3422b738c8779d7"
		if _, _, err := s.ImportConversations(ctx, []realtime.Conversation{{ID: id, Members: []string{"a", "b"}}}); err != nil {
			t.Fatal(err)
		}
		ar, err := s.AppendMessages(ctx, []*realtime.Message{{ConvID: id, From: "a", Data: "live"}})
		if err != nil || ar[0].Err != nil {
			t.Fatal(err, ar)
		}
		ts := ar[0].Message.Timestamp
		res, err := s.ImportMessages(ctx, []realtime.Message{
			{ID: "later000000000000000001", ConvID: id, From: "b", Data: "imported", Timestamp: ts + 10_000}})
		if err != nil || res[0].Err != nil || res[0].Message.Seq != 2 {
			t.Fatal(err, res)
		}
		ar, err = s.AppendMessages(ctx, []*realtime.Message{{ConvID: id, From: "a", Data: "after"}})
		if err != nil || ar[0].Err != nil {
			t.Fatal(err, ar)
		}
		if ar[0].Message.Seq != 3 || ar[0].Message.Timestamp != ts+10_001 {
			t.Fatalf("append after import: seq %d ts %d", ar[0].Message.Seq, ar[0].Message.Timestamp-ts)
		}
	})
}

func TestImportProgress(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
		if err := s.SaveImportProgress(ctx, "src", map[string]string{"a": "1", "b": "2"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveImportProgress(ctx, "src", map[string]string{"b": "3"}); err != nil {
			t.Fatal(err)
		}
		p, err := s.ImportProgress(ctx, "src")
		if err != nil || len(p) != 2 || p["a"] != "1" || p["b"] != "3" {
			t.Fatalf("progress %v %v", p, err)
		}
		if p, err := s.ImportProgress(ctx, "other"); err != nil || len(p) != 0 {
			t.Fatalf("other source: %v %v", p, err)
		}
	})
}

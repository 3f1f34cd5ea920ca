package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/leanhub/realtime"
	"github.com/leanhub/realtime/store"
)

// Migrations run twice, and from several openers at once.
func TestMigrateConcurrentAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := store.Open(context.Background(), path, nil)
			if err != nil {
				errs <- err
				return
			}
			errs <- s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrateConcurrentPostgres(t *testing.T) {
	dsn := pgDSN(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := store.Open(context.Background(), dsn, nil)
			if err != nil {
				t.Error(err)
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
}

// Appends answered before Close are durable; appends after Close fail.
func TestCloseDrainsAndPersists(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := s.CreateConversation(ctx, &realtime.Conversation{Members: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				res, err := s.AppendMessages(ctx, []*realtime.Message{{ConvID: c.ID, From: "a", Data: "x"}})
				if err != nil {
					if !errors.Is(err, store.ErrClosed) {
						t.Errorf("append: %v", err)
					}
					return
				}
				if res[0].Err == nil {
					mu.Lock()
					stored++
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := s.AppendMessages(ctx, []*realtime.Message{{ConvID: c.ID, From: "a", Data: "x"}}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("append after Close: %v", err)
	}
	s2, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	msgs, err := s2.History(ctx, realtime.HistoryQuery{ConvID: c.ID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != stored {
		t.Errorf("after reopen: %d messages, %d were acknowledged", len(msgs), stored)
	}
}

func TestOptions(t *testing.T) {
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	s := openSQLite(t, &store.Options{MaxMembers: 3, MaxMessageSize: 10, Clock: func() time.Time { return now }})
	_, _, err := s.CreateConversation(ctx, &realtime.Conversation{Members: []string{"a", "b", "c", "d"}})
	if !errors.Is(err, realtime.ErrConvFull) {
		t.Errorf("4 members with MaxMembers 3: %v", err)
	}
	c, _, err := s.CreateConversation(ctx, &realtime.Conversation{Members: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddMembers(ctx, c.ID, []string{"c", "d"}); !errors.Is(err, realtime.ErrConvFull) {
		t.Errorf("growing past MaxMembers: %v", err)
	}
	// A frozen clock: timestamps still strictly increase, by one.
	res, err := s.AppendMessages(ctx, []*realtime.Message{
		{ConvID: c.ID, From: "a", Data: "1"}, {ConvID: c.ID, From: "a", Data: "2"}, {ConvID: c.ID, From: "b", Data: "12345678901"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Message.Timestamp != now.UnixMilli() || res[1].Message.Timestamp != now.UnixMilli()+1 {
		t.Errorf("timestamps %d %d, want %d and +1", res[0].Message.Timestamp, res[1].Message.Timestamp, now.UnixMilli())
	}
	if !errors.Is(res[2].Err, realtime.ErrMessageTooLarge) {
		t.Errorf("11 bytes with MaxMessageSize 10: %v", res[2].Err)
	}
	// Any other name is a custom attribute; these are not fields.
	for _, sort := range []string{"m", "bogus field", "name; DROP TABLE conversations"} {
		if _, err := s.QueryConversations(ctx, realtime.ConversationQuery{Sort: sort}); !errors.Is(err, realtime.ErrConvQueryFailed) {
			t.Errorf("sort %q: %v", sort, err)
		}
	}
}

// Two stores (as two processes would) append to the same PostgreSQL
// conversations at once: their optimistic batches conflict and are retried
// under locks, and seqs stay gap-free, timestamps increasing, retried sends
// stored once and senders' cursors on their newest message.
func TestPostgresTwoWriters(t *testing.T) {
	ctx := context.Background()
	dsn := pgDSN(t)
	var stores [2]*store.SQL
	for i := range stores {
		s, err := store.Open(ctx, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	senders := []string{"a", "b", "c", "d"}
	var convs []string
	for range 3 {
		c, _, err := stores[0].CreateConversation(ctx, &realtime.Conversation{Members: append(senders, "reader")})
		if err != nil {
			t.Fatal(err)
		}
		convs = append(convs, c.ID)
	}
	const perSender = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := map[string]int{}    // conv -> messages stored
	last := map[[2]string]int64{} // (conv, sender) -> newest own seq
	for si, s := range stores {
		for _, from := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range perSender {
					conv := convs[k%len(convs)]
					// Both stores send the same client message ids: each
					// is stored once, the other copy is a duplicate.
					res, err := s.AppendMessages(ctx, []*realtime.Message{{
						ConvID: conv, From: from, Data: "x", ClientMsgID: fmt.Sprint("m", k),
					}})
					if err != nil || res[0].Err != nil {
						t.Errorf("store %d: %v %v", si, err, res)
						return
					}
					mu.Lock()
					if !res[0].Duplicate {
						stored[conv]++
					}
					if key := [2]string{conv, from}; res[0].Message.Seq > last[key] {
						last[key] = res[0].Message.Seq
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	total := 0
	for _, conv := range convs {
		msgs, err := stores[1].History(ctx, realtime.HistoryQuery{ConvID: conv, Direction: realtime.Newer, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != stored[conv] {
			t.Errorf("%s: %d messages stored, %d acknowledged as new", conv, len(msgs), stored[conv])
		}
		for i, m := range msgs {
			if m.Seq != int64(i+1) || i > 0 && m.Timestamp <= msgs[i-1].Timestamp {
				t.Fatalf("%s: message %d has seq %d, ts %d after %d", conv, i, m.Seq, m.Timestamp, msgs[max(i-1, 0)].Timestamp)
			}
		}
		total += len(msgs)
		members, err := stores[0].Members(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			if m.ClientID == "reader" {
				continue
			}
			want := msgs[last[[2]string{conv, m.ClientID}]-1]
			if m.ReadAt != want.Timestamp || m.ReadMessageID != want.ID {
				t.Errorf("%s: %s read cursor at %d %s, want its newest message %d %s",
					conv, m.ClientID, m.ReadAt, m.ReadMessageID, want.Timestamp, want.ID)
			}
		}
	}
	if want := len(senders) * perSender; total != want {
		t.Errorf("%d messages stored, want %d (each client message id once)", total, want)
	}
}

// The append writer caches conversation heads and memberships; a removed
// member, a retried send and appends from another store on the same
// database must still be seen.
func TestAppendCacheInvalidation(t *testing.T) {
	for _, db := range []struct {
		name string
		open func(testing.TB, *store.Options) *store.SQL
	}{{"sqlite", openSQLite}, {"postgres", openPG}} {
		t.Run(db.name, func(t *testing.T) {
			ctx := context.Background()
			s := db.open(t, nil)
			c, _, err := s.CreateConversation(ctx, &realtime.Conversation{Members: []string{"a", "b"}})
			if err != nil {
				t.Fatal(err)
			}
			send := func(from, cmid string) realtime.AppendResult {
				t.Helper()
				res, err := s.AppendMessages(ctx, []*realtime.Message{{ConvID: c.ID, From: from, Data: "x", ClientMsgID: cmid}})
				if err != nil {
					t.Fatal(err)
				}
				return res[0]
			}
			first := send("b", "m1")
			if first.Err != nil || first.Message.Seq != 1 {
				t.Fatalf("first append: %+v", first)
			}
			// A retried send in a later batch: the first copy, not a new one.
			if r := send("b", "m1"); !r.Duplicate || r.Message.ID != first.Message.ID {
				t.Errorf("retried send: %+v", r)
			}
			if _, _, err := s.RemoveMembers(ctx, c.ID, []string{"b"}); err != nil {
				t.Fatal(err)
			}
			if r := send("b", "m2"); !errors.Is(r.Err, realtime.ErrInvalidTarget) {
				t.Errorf("append by a removed member: %+v", r)
			}
			if _, _, err := s.AddMembers(ctx, c.ID, []string{"b"}); err != nil {
				t.Fatal(err)
			}
			if r := send("b", "m3"); r.Err != nil || r.Message.Seq != 2 {
				t.Errorf("append after re-adding: %+v", r)
			}
			// Another writer on the same database moves the head.
			if db.name == "postgres" {
				return // TestPostgresTwoWriters covers it
			}
			if _, err := s.DB().NewRaw("UPDATE conversations SET seq = seq + 1, last_ts = last_ts + 1 WHERE id = ?", c.ID).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			if r := send("a", "m4"); r.Err != nil || r.Message.Seq != 4 {
				t.Errorf("append after the head moved behind the writer's back: %+v", r)
			}
		})
	}
}

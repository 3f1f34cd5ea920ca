package store_test

import (
	"context"
	"errors"
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
	if _, err := s.QueryConversations(ctx, realtime.ConversationQuery{Sort: "bogus"}); !errors.Is(err, realtime.ErrConvQueryFailed) {
		t.Errorf("unknown sort field: %v", err)
	}
}

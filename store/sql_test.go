package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/pgtest"
	"github.com/leanhub/realtime/store"
	"github.com/leanhub/realtime/store/storetest"
)

// pgEnv names the environment variable with a PostgreSQL DSN for the tests,
// e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable
const pgEnv = "REALTIME_TEST_POSTGRES_DSN"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openSQLite opens a store on a new SQLite file in t.TempDir().
func openSQLite(t testing.TB, opts *store.Options) *store.SQL {
	t.Helper()
	s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "realtime.db"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// pgDSN returns a DSN for a fresh PostgreSQL schema, dropped when t ends,
// or skips t when REALTIME_TEST_POSTGRES_DSN is not set.
func pgDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(pgEnv)
	if base == "" {
		t.Skipf("PostgreSQL tests skipped: set %s, e.g. %s='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'", pgEnv, pgEnv)
	}
	dsn, drop, err := pgtest.NewSchema(base, "rt_test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	return dsn
}

func openPG(t testing.TB, opts *store.Options) *store.SQL {
	t.Helper()
	dsn := pgDSN(t)
	s, err := store.Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) realtime.Store { return openSQLite(t, nil) })
}

func TestSQLiteDevices(t *testing.T) {
	storetest.RunDevices(t, func(t *testing.T) realtime.DeviceStore { return openSQLite(t, nil) })
}

func TestSQLitePresence(t *testing.T) {
	storetest.RunPresence(t, func(t *testing.T) realtime.PresenceStore { return openSQLite(t, nil) })
}

func TestPostgresPresence(t *testing.T) {
	if os.Getenv(pgEnv) == "" {
		pgDSN(t)
	}
	storetest.RunPresence(t, func(t *testing.T) realtime.PresenceStore { return openPG(t, nil) })
}

func TestSQLiteMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) realtime.Store {
		s, err := store.Open(context.Background(), ":memory:", nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestPostgresConformance(t *testing.T) {
	if os.Getenv(pgEnv) == "" {
		pgDSN(t) // skips with the message
	}
	storetest.Run(t, func(t *testing.T) realtime.Store { return openPG(t, nil) })
}

func TestPostgresDevices(t *testing.T) {
	if os.Getenv(pgEnv) == "" {
		pgDSN(t)
	}
	storetest.RunDevices(t, func(t *testing.T) realtime.DeviceStore { return openPG(t, nil) })
}

// A path with '#' or '%' is that file, not a shorter one (the path goes
// into a file: URI where '#' starts a fragment).
func TestSQLitePathWithHashAndPercent(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a#1.db", "a%231.db"} {
		s, err := store.Open(context.Background(), filepath.Join(dir, name), nil)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	for _, name := range []string{"a#1.db", "a%231.db"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Error("the path was cut at '#'")
	}
}

// Two processes on one PostgreSQL database meeting in one group, one
// appending (which moves every member row's conv_seq) and the other
// writing its members' acks, take the rows in one order: no batch of
// either fails (a deadlock failed them and cost a deadlock_timeout each).
func TestPostgresAppendAndCursorsOfAnotherProcessDoNotDeadlock(t *testing.T) {
	dsn := pgDSN(t)
	ctx := context.Background()
	open := func() *store.SQL {
		s, err := store.Open(ctx, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	members := []string{"sender"}
	for i := range 300 {
		members = append(members, fmt.Sprintf("m%03d", i))
	}
	c, _, err := a.CreateConversation(ctx, &realtime.Conversation{Members: members})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	acks := make(chan error, 1)
	go func() {
		defer close(acks)
		for ts := int64(1); ; ts++ {
			select {
			case <-done:
				return
			default:
			}
			cs := make([]realtime.Cursor, 0, len(members)-1)
			for i := len(members) - 1; i > 0; i-- { // the reverse of the members' order
				cs = append(cs, realtime.Cursor{ConvID: c.ID, ClientID: members[i], DeliveredAt: ts})
			}
			if err := b.UpdateCursors(ctx, cs); err != nil {
				acks <- err
				return
			}
		}
	}()
	for i := range 150 {
		res, err := a.AppendMessages(ctx, []*realtime.Message{{ConvID: c.ID, From: "sender", Data: fmt.Sprint(i)}})
		if err == nil {
			err = res[0].Err
		}
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	close(done)
	if err := <-acks; err != nil {
		t.Fatalf("cursor write: %v", err)
	}
	if fa, fb := a.Stats().Failures, b.Stats().Failures; fa != 0 || fb != 0 {
		t.Fatalf("batch writes failed and were retried: %d appending, %d writing cursors (deadlocks?)", fa, fb)
	}
}

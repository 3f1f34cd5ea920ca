package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/uptrace/bun/driver/pgdriver"
	"go.uber.org/goleak"

	"github.com/leanhub/realtime"
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
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "rt_test_" + hex.EncodeToString(b[:])
	admin := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(base)))
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", pgEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
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

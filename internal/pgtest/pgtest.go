// Package pgtest gives tests a PostgreSQL schema of their own on the
// database REALTIME_TEST_POSTGRES_DSN names, so that test runs (and
// branches with other migrations) never share tables.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"

	"github.com/uptrace/bun/driver/pgdriver"
)

// Env names the environment variable with the base DSN.
const Env = "REALTIME_TEST_POSTGRES_DSN"

// NewSchema creates a schema named prefix_<random> on the database of base
// and returns base with search_path set to it, and a function that drops
// it.
func NewSchema(base, prefix string) (dsn string, drop func() error, err error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := prefix + "_" + hex.EncodeToString(b[:])
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("pgtest: %s: %w", Env, err)
	}
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	admin := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(u.String())))
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("pgtest: create schema: %w", err)
	}
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() error {
		defer admin.Close()
		_, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		return err
	}, nil
}

// IsolateProcess, called from TestMain, points REALTIME_TEST_POSTGRES_DSN
// at a fresh schema for the whole test binary (when it is set) and
// returns the function that drops it after the tests.
func IsolateProcess(prefix string) (cleanup func()) {
	base := os.Getenv(Env)
	if base == "" {
		return func() {}
	}
	dsn, drop, err := NewSchema(base, prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(Env, dsn)
	return func() {
		if err := drop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: drop schema:", err)
		}
	}
}

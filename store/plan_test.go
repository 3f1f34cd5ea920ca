package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/leanhub/realtime"
)

// The login sync's query reads a client's unread memberships through the
// members_unread partial index, on both databases, so its cost does not
// grow with memberships that have nothing new. The test fills a client
// with 300 conversations of which 10 are unread and asks each database
// for the query's plan.
func TestUnreadQueryUsesThePartialIndex(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *SQL
	}{
		{"sqlite", func(t *testing.T) *SQL {
			s, err := Open(context.Background(), filepath.Join(t.TempDir(), "plan.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"postgres", openPlanPG},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			ctx := context.Background()
			var unread []string
			for i := 0; i < 300; i++ {
				c, _, err := s.CreateConversation(ctx, &realtime.Conversation{Members: []string{"me", fmt.Sprintf("p%d", i)}})
				if err != nil {
					t.Fatal(err)
				}
				from := "me"
				if i%30 == 0 {
					from = fmt.Sprintf("p%d", i)
					unread = append(unread, c.ID)
				}
				if _, err := s.AppendMessages(ctx, []*realtime.Message{{ConvID: c.ID, From: from, Data: "x"}}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Unread(ctx, "me", 0, 0)
			if err != nil || len(got) != len(unread) {
				t.Fatalf("Unread = %d tuples, %v; want %d", len(got), err, len(unread))
			}
			var plan []string
			if s.pg {
				// Statistics of a freshly filled table may make a scan look
				// cheaper; the point is that the index serves the query.
				_, _ = s.r.ExecContext(ctx, "ANALYZE members")
				rows, err := s.r.QueryContext(ctx, "EXPLAIN "+unreadQuery, "me", 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var line string
					rows.Scan(&line)
					plan = append(plan, line)
				}
				rows.Close()
			} else {
				rows, err := s.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+unreadQuery, "me", 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var id, parent, notused int
					var detail string
					rows.Scan(&id, &parent, &notused, &detail)
					plan = append(plan, detail)
				}
				rows.Close()
			}
			text := strings.Join(plan, "\n")
			t.Logf("plan:\n%s", text)
			if !strings.Contains(text, "members_unread") {
				t.Fatalf("the unread query does not use members_unread:\n%s", text)
			}
		})
	}
}

func openPlanPG(t *testing.T) *SQL {
	base := os.Getenv("REALTIME_TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("PostgreSQL tests skipped: set REALTIME_TEST_POSTGRES_DSN")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "rt_plan_" + hex.EncodeToString(b[:])
	admin := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(base)))
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	s, err := Open(context.Background(), u.String(), &Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

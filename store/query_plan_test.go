package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/convquery"
	"github.com/leanhub/realtime/store"
)

// The conversation queries the SDKs send use indexes, not scans of every
// conversation, on both databases: EXPLAIN of the statements
// QueryConversations runs over 20,000 conversations (run with -v to see
// the plans).
func TestQueryPlans(t *testing.T) {
	for _, db := range []struct {
		name string
		open func(testing.TB, *store.Options) *store.SQL
	}{{"sqlite", openSQLite}, {"postgres", openPG}} {
		t.Run(db.name, func(t *testing.T) {
			s := db.open(t, nil)
			pg := db.name == "postgres"
			fillConversations(t, s, pg, 20000)
			where := func(w string) *realtime.Filter {
				f, err := convquery.Parse([]byte(w), nil)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
			ids := make([]string, 999)
			for i := range ids {
				ids[i] = fmt.Sprintf("%024x", i*7+1)
			}
			idList := `["` + strings.Join(ids, `","`) + `"]`
			for _, tt := range []struct {
				name string
				q    realtime.ConversationQuery
				// want: an index the plan must use, per database ("" for
				// any, as long as conversations are not scanned).
				sqlite, postgres string
				scanOK           bool // SQLite: custom attributes have no index
			}{
				// client.getConversation(id) and getConversations(ids).
				{name: "objectId", q: realtime.ConversationQuery{Where: where(`{"objectId":"` + ids[5] + `"}`)},
					sqlite: "sqlite_autoindex_conversations_1", postgres: "conversations_pkey"},
				{name: "objectId $in 999", q: realtime.ConversationQuery{Where: where(`{"objectId":{"$in":` + idList + `}}`), Limit: 999},
					sqlite: "sqlite_autoindex_conversations_1", postgres: "conversations_pkey"},
				// getQuery().find(): the hub restricts to the client's
				// conversations.
				{name: "my conversations, -lm", q: realtime.ConversationQuery{Member: "c42"},
					sqlite: "members_client", postgres: "members_client"},
				{name: "containsMembers", q: realtime.ConversationQuery{Where: where(`{"m":{"$all":["c42","c43"]}}`)},
					sqlite: "members_client", postgres: "members_client"},
				{name: "withMembers", q: realtime.ConversationQuery{Where: where(`{"m":{"$size":2,"$all":["c42","c43"]}}`)},
					sqlite: "members_client", postgres: "members_client"},
				{name: "mine, equalTo attr.type, greaterThan lm", q: realtime.ConversationQuery{Member: "c42",
					Where: where(`{"attr.type":"t7","lm":{"$gt":{"__type":"Date","iso":"2024-01-01T00:00:00.000Z"}}}`)},
					sqlite: "members_client", postgres: "members_client"},
				{name: "mine, contains name, sort attr", q: realtime.ConversationQuery{Member: "c42",
					Where: where(`{"name":{"$regex":"\\Qconv1\\E"}}`), Sort: "-attr.rank"},
					sqlite: "members_client", postgres: "members_client"},
				// getChatRoomQuery(), getServiceConversationQuery().
				{name: "chat rooms", q: realtime.ConversationQuery{Where: where(`{"tr":true}`)},
					sqlite: "conversations_transient", postgres: "conversations_transient"},
				{name: "system conversations", q: realtime.ConversationQuery{Where: where(`{"sys":true}`), Sort: "-createdAt"},
					sqlite: "conversations_system", postgres: "conversations_system"},
				{name: "chat rooms by name", q: realtime.ConversationQuery{Where: where(`{"tr":true,"name":{"$regex":"^\\Qconv\\E"}}`), Sort: "name"}},
				// Queries no member condition narrows (REST, master key).
				{name: "name", q: realtime.ConversationQuery{Where: where(`{"name":"conv77"}`)},
					sqlite: "conversations_name", postgres: "conversations_name"},
				{name: "sort by name", q: realtime.ConversationQuery{Sort: "name"},
					sqlite: "conversations_name", postgres: "conversations_name"},
				{name: "createdAt range", q: realtime.ConversationQuery{Where: where(`{"createdAt":{"$gte":100,"$lt":200}}`)},
					sqlite: "conversations_created", postgres: "conversations_created"},
				{name: "updatedAt, newest", q: realtime.ConversationQuery{Sort: "-updatedAt"},
					sqlite: "conversations_updated", postgres: "conversations_updated"},
				// Custom attributes: PostgreSQL's GIN index (the fill
				// vacuums, as autovacuum would, or a pending list of
				// 20,000 entries makes the index look expensive). SQLite
				// has no index for them: it scans.
				{name: "attr.code", q: realtime.ConversationQuery{Where: where(`{"attr.code":"k123"}`)},
					postgres: "conversations_attrs", scanOK: true},
				{name: "attr.tags $all", q: realtime.ConversationQuery{Where: where(`{"attr.code":{"$all":["k123"]},"attr.tags":{"$all":["x","t7"]}}`)},
					postgres: "conversations_attrs", scanOK: true},
				{name: "attr.type", q: realtime.ConversationQuery{Where: where(`{"attr.type":"t7"}`)},
					postgres: "conversations_attrs", scanOK: true},
			} {
				query, args, err := store.ConversationsSQL(s, tt.q)
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				explain := "EXPLAIN QUERY PLAN "
				if pg {
					explain = "EXPLAIN "
				}
				lines := explainPlan(t, s, explain+query, args)
				plan := strings.Join(lines, "\n")
				t.Logf("%s:\n%s", tt.name, plan)
				want := tt.sqlite
				if pg {
					want = tt.postgres
				}
				if want != "" && !strings.Contains(plan, want) {
					t.Errorf("%s: the plan does not use %s", tt.name, want)
				}
				scan := "SCAN c\n"
				if pg {
					scan = "Seq Scan on conversations"
				}
				if strings.Contains(plan+"\n", scan) && !(tt.scanOK && !pg) {
					t.Errorf("%s: the plan scans conversations", tt.name)
				}
			}
		})
	}
}

// fillConversations inserts n conversations of two members each (clients
// c0..c4999), 1 in 500 a chat room, 1 in 700 a system conversation, then
// updates the planner's statistics.
func fillConversations(t *testing.T, s *store.SQL, pg bool, n int) {
	t.Helper()
	ctx := context.Background()
	series := fmt.Sprintf("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) ", n)
	hex := "printf('%024x', i)"
	from := " FROM n"
	if pg {
		series, hex, from = "", "lpad(to_hex(i), 24, '0')", fmt.Sprintf(" FROM generate_series(1, %d) AS i", n)
	}
	for _, stmt := range []string{
		series + `INSERT INTO conversations (id, name, attrs, is_transient, is_system, created_at, updated_at, member_count)
			SELECT ` + hex + `, 'conv' || i, '{"type":"t' || (i % 100) || '","rank":' || (i % 37) || ',"tags":["x","t' || (i % 100) || '"]}',
			i % 500 = 0, i % 700 = 0, i, i, 2` + from,
		series + `INSERT INTO members (conv_id, client_id, joined_at) SELECT ` + hex + `, 'c' || (i % 5000), i` + from,
		series + `INSERT INTO members (conv_id, client_id, joined_at) SELECT ` + hex + `, 'c' || ((i + 1) % 5000), i` + from,
		// VACUUM also merges the GIN index's pending list, as
		// autovacuum would.
		map[bool]string{false: "ANALYZE", true: "VACUUM ANALYZE"}[pg],
	} {
		if _, err := s.DB().ExecContext(ctx, stmt); err != nil {
			t.Fatalf("fill: %v", err)
		}
	}
}

// explainPlan runs an EXPLAIN and returns its text column: the only one on
// PostgreSQL, the last ("detail") of SQLite's EXPLAIN QUERY PLAN.
func explainPlan(t *testing.T, s *store.SQL, query string, args []any) []string {
	t.Helper()
	rows, err := s.DB().QueryContext(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprint(vals[len(vals)-1])
		if len(line) > 300 {
			line = line[:300] + "..."
		}
		lines = append(lines, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// A conversation query over QueryTimeout is refused with 4310, not
// reported as an infrastructure failure: what PostgreSQL's
// statement_timeout cancels is recognized.
func TestStatementTimeoutRecognized(t *testing.T) {
	s := openPG(t, nil)
	var out []string
	err := s.DB().NewRaw("SET LOCAL statement_timeout = 10; SELECT pg_sleep(1)::text").Scan(context.Background(), &out)
	if err == nil || !store.IsStatementTimeout(err) {
		t.Fatalf("pg_sleep past statement_timeout: %v", err)
	}
	if store.IsStatementTimeout(fmt.Errorf("other")) {
		t.Fatal("any error is a statement timeout")
	}
}

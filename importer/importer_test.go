package importer_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
	"go.uber.org/goleak"

	"github.com/leanhub/realtime"
	"github.com/leanhub/realtime/importer"
	"github.com/leanhub/realtime/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreAnyFunction("github.com/uptrace/bun/driver/pgdriver.(*Connector).Connect"),
	)
}

// fullEnv runs the tests on a realistic export: 2,000 conversations and
// 200,000 messages (the default is 300 and 20,000, with -race 100 and
// 5,000, with -short 60 and 3,000).
const fullEnv = "REALTIME_IMPORT_FULL"

// raceEnabled is set in race builds, which get a smaller default export.
var raceEnabled bool

func appSize() (convs, msgs int) {
	switch {
	case os.Getenv(fullEnv) != "":
		return 2000, 200_000
	case testing.Short():
		return 60, 3000
	case raceEnabled:
		return 100, 5000
	}
	return 300, 20_000
}

const pgEnv = "REALTIME_TEST_POSTGRES_DSN"

type backend struct {
	name string
	// open returns a new empty store, closed when the test ends.
	open func(t testing.TB) *store.SQL
}

// backends are SQLite files always and PostgreSQL (a fresh schema per
// store) when REALTIME_TEST_POSTGRES_DSN is set.
func backends() []backend {
	b := []backend{{"sqlite", func(t testing.TB) *store.SQL {
		return openStore(t, filepath.Join(t.TempDir(), fmt.Sprintf("import-%d.db", time.Now().UnixNano())))
	}}}
	if os.Getenv(pgEnv) != "" {
		b = append(b, backend{"postgres", func(t testing.TB) *store.SQL { return openStore(t, pgDSN(t)) }})
	}
	return b
}

func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	if os.Getenv(pgEnv) == "" {
		t.Logf("PostgreSQL skipped: set %s", pgEnv)
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

func openStore(t testing.TB, dsn string) *store.SQL {
	t.Helper()
	// Few connections: the PostgreSQL server is shared with other tests.
	var st *store.SQL
	err := retryBusy(func() (err error) {
		st, err = store.Open(context.Background(), dsn, &store.Options{MaxConns: 4})
		return err
	})
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// pgDSN returns a DSN for a fresh PostgreSQL schema, dropped when t ends.
func pgDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(pgEnv)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "rt_import_" + hex.EncodeToString(b[:])
	admin := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(base)))
	admin.SetMaxOpenConns(1)
	if err := retryBusy(func() error { _, err := admin.Exec("CREATE SCHEMA " + schema); return err }); err != nil {
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
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// retryBusy retries f for a while when the shared PostgreSQL server has
// no connection slot left (SQLSTATE 53300): other packages' tests use it
// at the same time.
func retryBusy(f func() error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := f()
		if err == nil || !strings.Contains(err.Error(), "53300") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// files is a generated app written as files.
type files struct {
	export  string
	history []string
}

func writeApp(t testing.TB, app *genApp, dups int) files {
	dir := t.TempDir()
	return files{export: app.writeExport(t, dir, "lines"), history: app.writeHistory(t, dir, 1, dups)}
}

func (f files) config() *importer.Config {
	c := &importer.Config{Conversations: []importer.Source{importer.File(f.export)}}
	for _, h := range f.history {
		c.History = append(c.History, importer.File(h))
	}
	return c
}

func runImport(t testing.TB, target importer.Target, cfg *importer.Config) *importer.Summary {
	t.Helper()
	im, err := importer.New(target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := im.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return sum
}

func summaryText(s *importer.Summary) string {
	var b strings.Builder
	_, _ = s.WriteTo(&b)
	return b.String()
}

// checkImported compares what st holds with what app must become:
// conversations and their members, and every message of every
// conversation (id, timestamp, order, seq, sender, body, recall, mentions)
// as History returns it, and that nothing imported is unread.
func checkImported(t testing.TB, st *store.SQL, app *genApp) {
	t.Helper()
	ctx := context.Background()
	for _, c := range app.convs {
		got, err := st.GetConversation(ctx, c.id)
		if err != nil {
			t.Fatalf("conversation %s: %v", c.id, err)
		}
		if !c.transient && !slices.Equal(got.Members, slices.Sorted(slices.Values(c.members))) {
			t.Fatalf("conversation %s members %v, want %v", c.id, got.Members, c.members)
		}
		if got.Name != c.row["name"] || got.Transient != c.transient {
			t.Fatalf("conversation %s: %+v", c.id, got)
		}
		want := app.want[c.id]
		if got.Seq != int64(len(want)) {
			t.Fatalf("conversation %s seq %d, want %d", c.id, got.Seq, len(want))
		}
		var all []*realtime.Message
		for start := int64(0); ; {
			page, err := st.History(ctx, realtime.HistoryQuery{ConvID: c.id, Direction: realtime.Newer, Start: start, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			all = append(all, page...)
			start = page[len(page)-1].Timestamp
		}
		if len(all) != len(want) {
			t.Fatalf("conversation %s: %d messages, want %d", c.id, len(all), len(want))
		}
		for k, m := range all {
			w := want[k]
			if m.ID != w.ID || m.Timestamp != w.Timestamp || m.Seq != w.Seq || m.From != w.From || m.Data != w.Data ||
				!slices.Equal(m.Binary, w.Binary) || m.Recalled != w.Recalled || m.PatchTimestamp != w.PatchTimestamp ||
				m.MentionAll != w.MentionAll || !slices.Equal(m.MentionPids, w.MentionPids) {
				t.Fatalf("conversation %s message %d:\n got %+v\nwant %+v", c.id, k, m, w)
			}
		}
		if len(c.members) > 0 && len(want) > 0 {
			u, err := st.Unread(ctx, c.members[0], 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, tu := range u {
				if tu.ConvID == c.id {
					t.Fatalf("%s has %d unread in %s after the import", c.members[0], tu.Unread, c.id)
				}
			}
		}
	}
}

// dump is a digest of every table an import writes, per table, for
// comparing two stores of the same dialect.
func dump(t testing.TB, st *store.SQL) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for name, q := range map[string]string{
		"conversations": "SELECT id, name, creator, attrs, is_transient, is_system, is_unique, unique_key, is_temporary, " +
			"expires_at, muted, created_at, updated_at, member_count, seq, last_ts, last_mid, mention_all_seq FROM conversations ORDER BY id",
		"members": "SELECT conv_id, client_id, joined_at, delivered_ts, read_ts, read_seq, read_mid, mention_seq " +
			"FROM members ORDER BY conv_id, client_id",
		"messages": "SELECT id, conv_id, seq, ts, from_id, client_msg_id, data, bin, lctype, mention_all, mention_pids, " +
			"receipt, patch_ts, recalled, patch_code, patch_reason FROM messages ORDER BY conv_id, seq",
		"import_progress": "SELECT source, conv_id, state FROM import_progress ORDER BY source, conv_id",
	} {
		rows, err := st.DB().QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		h := sha256.New()
		n := 0
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(h, "%q\n", vals)
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		out[name] = fmt.Sprintf("%d rows %x", n, h.Sum(nil)[:8])
	}
	return out
}

func wantCounts(t testing.TB, what string, got importer.Count, imported, existing, skipped int) {
	t.Helper()
	if got.Imported != imported || got.Existing != existing || got.Skipped != skipped {
		t.Fatalf("%s: %+v, want imported %d, existing %d, skipped %d", what, got, imported, existing, skipped)
	}
}

// A realistic export from files: everything arrives with its ids,
// timestamps and order; a second run writes nothing.
func TestImportFiles(t *testing.T) {
	nc, nm := appSize()
	app := generateApp(nc, nm, 1)
	const dups = 25
	f := writeApp(t, app, dups)
	eachBackend(t, func(t *testing.T, b backend) {
		st := b.open(t)
		start := time.Now()
		sum := runImport(t, st, f.config())
		elapsed := time.Since(start)
		t.Logf("%d conversations, %d messages in %v (%.0f messages/s)\n%s", nc, app.total, elapsed.Round(time.Millisecond),
			float64(app.total)/elapsed.Seconds(), summaryText(sum))
		wantCounts(t, "conversations", sum.Conversations, nc, 0, 0)
		wantCounts(t, "messages", sum.Messages, app.total, 0, dups)
		if sum.Reasons[importer.ReasonDuplicateMessage] != dups || sum.Reasons[importer.ReasonTimestampMoved] != app.moved {
			t.Fatalf("reasons %v (moved %d)", sum.Reasons, app.moved)
		}
		if app.moved == 0 {
			t.Fatal("the generated app has no messages in the same millisecond")
		}
		if sum.Attributes["type"] == 0 || sum.Attributes["attr"] == 0 || len(sum.UnknownFields) != 0 {
			t.Fatalf("attributes %v, unknown fields %v", sum.Attributes, sum.UnknownFields)
		}
		checkImported(t, st, app)
		before := dump(t, st)

		again := runImport(t, st, f.config())
		wantCounts(t, "second run conversations", again.Conversations, 0, nc, 0)
		wantCounts(t, "second run messages", again.Messages, 0, app.total, dups)
		if again.CheckpointedConversations != nc {
			t.Fatalf("second run looked at %d conversations again", nc-again.CheckpointedConversations)
		}
		if after := dump(t, st); !reflect.DeepEqual(before, after) {
			t.Fatalf("a second run changed the store:\n%v\n%v", before, after)
		}
	})
}

// The export's three shapes give the same store.
func TestImportExportShapes(t *testing.T) {
	app := generateApp(20, 400, 2)
	dir := t.TempDir()
	history := app.writeHistory(t, dir, 2, 0)
	var first map[string]string
	for _, shape := range []string{"lines", "array", "results"} {
		cfg := &importer.Config{Conversations: []importer.Source{importer.File(app.writeExport(t, dir, shape))}}
		for _, h := range history {
			cfg.History = append(cfg.History, importer.File(h))
		}
		st := openStore(t, filepath.Join(dir, shape+".db"))
		sum := runImport(t, st, cfg)
		wantCounts(t, shape+" conversations", sum.Conversations, 20, 0, 0)
		wantCounts(t, shape+" messages", sum.Messages, app.total, 0, 0)
		d := dump(t, st)
		if first == nil {
			first = d
		} else if !reflect.DeepEqual(first, d) {
			t.Fatalf("%s: %v, lines gave %v", shape, d, first)
		}
	}
}

// cancelling is a Target that cancels the run's context after a number of
// ImportMessages calls, as a killed process would stop: between or in the
// middle of transactions.
type cancelling struct {
	importer.Target
	after  int64
	calls  atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelling) ImportMessages(ctx context.Context, msgs []realtime.Message) ([]realtime.AppendResult, error) {
	if c.calls.Add(1) == c.after {
		c.cancel()
	}
	return c.Target.ImportMessages(ctx, msgs)
}

// A run stopped half-way and run again ends with the same store as one
// uninterrupted run.
func TestImportResume(t *testing.T) {
	nc, nm := appSize()
	app := generateApp(nc, nm, 3)
	f := writeApp(t, app, 10)
	eachBackend(t, func(t *testing.T, b backend) {
		clean := b.open(t)
		runImport(t, clean, f.config())
		want := dump(t, clean)

		st := b.open(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		calls := int64(app.total / 500 / 2)
		im, err := importer.New(&cancelling{Target: st, after: max(calls, 1), cancel: cancel}, f.config())
		if err != nil {
			t.Fatal(err)
		}
		cut, err := im.Run(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cut run: %v", err)
		}
		if cut.Messages.Imported == 0 || cut.Messages.Imported >= app.total {
			t.Fatalf("cut run imported %d of %d", cut.Messages.Imported, app.total)
		}
		rest := runImport(t, st, f.config())
		if rest.Messages.Imported+cut.Messages.Imported != app.total {
			t.Fatalf("cut run %d + resumed %d messages, want %d", cut.Messages.Imported, rest.Messages.Imported, app.total)
		}
		if got := dump(t, st); !reflect.DeepEqual(got, want) {
			t.Fatalf("resumed import:\n%v\nwant\n%v", got, want)
		}
		checkImported(t, st, app)
	})
}

// History pulled from (a fake of) LeanCloud's REST API, paged backwards,
// with 429 and 503 answers on the way; the checkpoint spares refetching.
func TestImportLeanCloud(t *testing.T) {
	nc, nm := appSize()
	app := generateApp(nc, nm, 4)
	dir := t.TempDir()
	export := app.writeExport(t, dir, "results")
	eachBackend(t, func(t *testing.T, b backend) {
		lc := newFakeLeanCloud(t, app.items)
		lc.failEvery = 7
		client := func() *importer.Client {
			return &importer.Client{BaseURL: lc.srv.URL, AppID: lc.appID, MasterKey: lc.masterKey,
				HTTPClient: lc.srv.Client(), Concurrency: 3, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
		}
		cfg := func(c *importer.Client) *importer.Config {
			return &importer.Config{Conversations: []importer.Source{importer.File(export)}, LeanCloud: c}
		}
		st := b.open(t)
		sum := runImport(t, st, cfg(client()))
		t.Logf("%s", summaryText(sum))
		wantCounts(t, "conversations", sum.Conversations, nc, 0, 0)
		wantCounts(t, "messages", sum.Messages, app.total, 0, 0)
		if sum.Retries == 0 || lc.failed.Load() == 0 {
			t.Fatalf("no retries: %d requests, %d failed", sum.Requests, lc.failed.Load())
		}
		if lc.maxSeen.Load() > 3 {
			t.Fatalf("%d concurrent requests, Concurrency is 3", lc.maxSeen.Load())
		}
		checkImported(t, st, app)
		want := dump(t, st)

		reqs := lc.requests.Load()
		again := runImport(t, st, cfg(client()))
		wantCounts(t, "second run messages", again.Messages, 0, app.total, 0)
		if n := lc.requests.Load() - reqs; n != 0 {
			t.Fatalf("second run made %d requests; the checkpoint has every conversation", n)
		}
		c := client()
		refresh := cfg(c)
		refresh.Refresh = true
		again = runImport(t, st, refresh)
		wantCounts(t, "refresh messages", again.Messages, 0, app.total, 0)
		if again.Requests == 0 {
			t.Fatal("refresh fetched nothing")
		}
		if got := dump(t, st); !reflect.DeepEqual(got, want) {
			t.Fatalf("re-runs changed the store:\n%v\n%v", got, want)
		}

		// The app-wide endpoint gives the same store.
		wide := b.open(t)
		c = client()
		c.PageSize = 700
		wcfg := cfg(c)
		wcfg.AppWide = true
		sum = runImport(t, wide, wcfg)
		wantCounts(t, "app-wide messages", sum.Messages, app.total, 0, 0)
		if got := dump(t, wide); !reflect.DeepEqual(got, want) {
			t.Fatalf("app-wide import:\n%v\nwant\n%v", got, want)
		}
	})
}

// A REST import cut half-way is continued by the next run, which does not
// fetch the conversations completed before.
func TestImportLeanCloudResume(t *testing.T) {
	app := generateApp(40, 4000, 5)
	export := app.writeExport(t, t.TempDir(), "lines")
	lc := newFakeLeanCloud(t, app.items)
	client := &importer.Client{BaseURL: lc.srv.URL, AppID: lc.appID, MasterKey: lc.masterKey, HTTPClient: lc.srv.Client()}
	var lines strings.Builder
	cfg := &importer.Config{Conversations: []importer.Source{importer.File(export)}, LeanCloud: client, BatchSize: 100,
		Progress: &lines, ProgressEvery: time.Millisecond}
	clean := openStore(t, filepath.Join(t.TempDir(), "clean.db"))
	runImport(t, clean, cfg)
	want := dump(t, clean)
	if !strings.Contains(lines.String(), "lcimport: done: ") || !strings.Contains(lines.String(), "fetching the history") {
		t.Fatalf("progress:\n%s", lines.String())
	}

	st := openStore(t, filepath.Join(t.TempDir(), "cut.db"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	im, err := importer.New(&cancelling{Target: st, after: 20, cancel: cancel}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := im.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cut run: %v", err)
	}
	progress, err := st.ImportProgress(context.Background(), "leancloud:"+lc.appID)
	if err != nil || len(progress) == 0 || len(progress) == len(app.convs) {
		t.Fatalf("checkpoint after the cut: %d conversations, %v", len(progress), err)
	}
	reqs := lc.requests.Load()
	rest := runImport(t, st, cfg)
	if rest.CheckpointedConversations != len(progress) {
		t.Fatalf("resumed run skipped %d conversations, the checkpoint has %d", rest.CheckpointedConversations, len(progress))
	}
	if lc.requests.Load()-reqs >= reqs {
		t.Fatalf("resumed run made %d requests, the whole import %d", lc.requests.Load()-reqs, reqs)
	}
	if got := dump(t, st); !reflect.DeepEqual(got, want) {
		t.Fatalf("resumed import:\n%v\nwant\n%v", got, want)
	}
}

func TestLeanCloudClientErrors(t *testing.T) {
	app := generateApp(3, 30, 6)
	lc := newFakeLeanCloud(t, app.items)
	ctx := context.Background()
	bad := &importer.Client{BaseURL: lc.srv.URL, AppID: lc.appID, MasterKey: "wrong", HTTPClient: lc.srv.Client()}
	_, err := bad.History(ctx, app.convs[0].id)
	var he *importer.HTTPError
	if !errors.As(err, &he) || he.StatusCode != 401 || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("wrong key: %v", err)
	}
	// A wrong key stops an import instead of skipping every conversation.
	export := app.writeExport(t, t.TempDir(), "lines")
	im, err := importer.New(nil, &importer.Config{Conversations: []importer.Source{importer.File(export)},
		LeanCloud: bad, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := im.Run(ctx); !errors.As(err, &he) {
		t.Fatalf("import with a wrong key: %v", err)
	}
	down := newFakeLeanCloud(t, app.items)
	down.failEvery = 1 // every request fails
	flaky := &importer.Client{BaseURL: down.srv.URL, AppID: down.appID, MasterKey: down.masterKey, HTTPClient: down.srv.Client(),
		MaxAttempts: 3, MinBackoff: time.Millisecond}
	if _, err := flaky.History(ctx, app.convs[0].id); !errors.As(err, &he) || (he.StatusCode != 503 && he.StatusCode != 429) {
		t.Fatalf("always failing: %v", err)
	}
	if n := down.requests.Load(); n != 3 {
		t.Fatalf("%d requests, want 3 attempts", n)
	}
	for _, c := range []*importer.Client{{BaseURL: "ftp://x", AppID: "a", MasterKey: "k"}, {BaseURL: "https://x", AppID: "a"}} {
		if _, err := importer.New(nil, &importer.Config{Conversations: []importer.Source{importer.File(export)},
			LeanCloud: c, DryRun: true}); err == nil {
			t.Errorf("New accepted %+v", c)
		}
	}
}

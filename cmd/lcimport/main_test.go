package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/leanhub/realtime/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

const (
	convA = "5a5ecde6c3422b738c8779d7"
	convB = "5a5ecde6c3422b738c8779d8"
	key   = "s3cret-master-key"
)

// writeExport writes a two-conversation export and returns its path.
func writeExport(t *testing.T, dir string) string {
	path := filepath.Join(dir, "_Conversation.json")
	rows := `{"objectId":"` + convA + `","name":"汤姆和杰瑞","m":["tom","jerry"],"unique":true,"createdAt":"2020-05-26T06:42:31.492Z"}
{"objectId":"` + convB + `","name":"group","m":["tom","jerry","kate"],"type":"group"}
{"objectId":"_tmp:abc","m":["tom"]}
`
	if err := os.WriteFile(path, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// items are n history items of conv, newest first.
func items(conv string, n int) []map[string]any {
	var out []map[string]any
	for i := n - 1; i >= 0; i-- {
		out = append(out, map[string]any{"msg-id": fmt.Sprintf("%s-%012d", conv[16:], i), "timestamp": 1_600_000_000_000 + int64(i)*1000,
			"conv-id": conv, "from": "tom", "data": fmt.Sprintf(`{"_lctype":-1,"_lctext":"第 %d 条"}`, i), "bin": false})
	}
	return out
}

func runCmd(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

func TestHelp(t *testing.T) {
	code, _, stderr := runCmd(t, nil, "-h")
	if code != exitOK || !strings.Contains(stderr, "-lc-master-key-file") || !strings.Contains(stderr, "-dry-run") {
		t.Fatalf("-h: %d\n%s", code, stderr)
	}
}

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	export := writeExport(t, dir)
	for _, args := range [][]string{
		{"-db", "x.db"},
		{"-conversations", export},
		{"-db", "x.db", "-conversations", export, "-lc-url", "http://x", "-history", export},
		{"-db", "x.db", "-conversations", export, "-unread", "some"},
		{"-db", "x.db", "-conversations", export, "-lc-url", "http://x", "-lc-app-id", "a"}, // no master key
		{"-db", "x.db", "-conversations", filepath.Join(dir, "missing.json")},
		{"-db", "x.db", "-conversations", export, "stray"},
	} {
		if code, _, stderr := runCmd(t, nil, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d\n%s", args, code, exitUsage, stderr)
		}
	}
}

func TestImportFromFiles(t *testing.T) {
	dir := t.TempDir()
	export := writeExport(t, dir)
	hist := filepath.Join(dir, "history")
	if err := os.Mkdir(hist, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, conv := range []string{convA, convB} {
		b, _ := json.Marshal(items(conv, 30+i))
		if err := os.WriteFile(filepath.Join(hist, conv+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(dir, "chat.db")
	code, stdout, stderr := runCmd(t, nil, "-db", db, "-conversations", export, "-history", hist)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"conversations: 2 imported, 0 already there, 1 skipped", "messages:      61 imported",
		"temporary conversation", "custom conversation attributes kept: type (1)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "lcimport: done") {
		t.Errorf("no progress on stderr:\n%s", stderr)
	}
	code, stdout, _ = runCmd(t, nil, "-db", db, "-conversations", export, "-history", hist, "-progress", "0")
	if code != exitOK || !strings.Contains(stdout, "messages:      0 imported, 61 already there") {
		t.Fatalf("second run: %d\n%s", code, stdout)
	}
	code, stdout, _ = runCmd(t, nil, "-dry-run", "-conversations", export, "-history", hist)
	if code != exitOK || !strings.Contains(stdout, "61 would import") {
		t.Fatalf("dry run: %d\n%s", code, stdout)
	}
}

// A minimal LeanCloud: history of two conversations, paged by timestamp.
func fakeLeanCloud(t *testing.T) *httptest.Server {
	hist := map[string][]map[string]any{convA: items(convA, 25), convB: items(convB, 7)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-LC-Id") != "app" || r.Header.Get("X-LC-Key") != key+",master" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"code":401,"error":"Unauthorized."}`)
			return
		}
		conv := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/1.2/rtm/conversations/"), "/messages")
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		before := int64(1 << 62)
		if s := r.URL.Query().Get("timestamp"); s != "" {
			before, _ = strconv.ParseInt(s, 10, 64)
		}
		page := []map[string]any{}
		for _, it := range hist[conv] {
			if it["timestamp"].(int64) < before && len(page) < min(limit, 10) {
				page = append(page, it)
			}
		}
		_ = json.NewEncoder(w).Encode(page)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestImportFromLeanCloud(t *testing.T) {
	dir := t.TempDir()
	export := writeExport(t, dir)
	srv := fakeLeanCloud(t)
	saved := filepath.Join(dir, "saved")
	db := filepath.Join(dir, "chat.db")
	code, stdout, stderr := runCmd(t, map[string]string{"LC_MASTER_KEY": key}, "-db", db, "-conversations", export,
		"-lc-url", srv.URL, "-lc-app-id", "app", "-lc-save-history", saved)
	if code != exitOK || !strings.Contains(stdout, "messages:      32 imported") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, key) {
		t.Fatal("the master key was printed")
	}
	// The saved history imports the same into another store.
	code, stdout, _ = runCmd(t, nil, "-db", filepath.Join(dir, "again.db"), "-conversations", export, "-history", saved)
	if code != exitOK || !strings.Contains(stdout, "messages:      32 imported") {
		t.Fatalf("from saved history: %d\n%s", code, stdout)
	}
	// The key from a file; a wrong key is fatal, without printing it.
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("wrong-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCmd(t, nil, "-db", filepath.Join(dir, "wrong.db"), "-conversations", export,
		"-lc-url", srv.URL, "-lc-app-id", "app", "-lc-master-key-file", keyFile)
	if code != exitFatal || !strings.Contains(stderr, "401") || strings.Contains(stdout+stderr, "wrong-key") {
		t.Fatalf("wrong key: %d\n%s\n%s", code, stdout, stderr)
	}
}

// killedEnv makes the test binary run lcimport's main (for
// TestKilledAndRerun, which kills it).
const killedEnv = "LCIMPORT_TEST_RUN_MAIN"

func init() {
	if os.Getenv(killedEnv) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
	}
}

// An lcimport process killed (SIGKILL) half-way and run again ends with
// the same store as one run to the end.
func TestKilledAndRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 15,000 messages three times")
	}
	dir := t.TempDir()
	var convs, hist strings.Builder
	for c := range 150 {
		id := fmt.Sprintf("5b%022x", c)
		fmt.Fprintf(&convs, `{"objectId":%q,"name":"会话 %d","m":["u%d","u%d","u%d"]}`+"\n", id, c, c, c+1, c+2)
		for i := range 100 {
			fmt.Fprintf(&hist, `{"msg-id":"%022x","timestamp":%d,"conv-id":%q,"from":"u%d","data":"{\"_lctype\":-1,\"_lctext\":\"消息 %d\"}"}`+"\n",
				c*1000+i, 1_600_000_000_000+int64(c)*1_000_000+int64(i)*997, id, c+i%3, i)
		}
	}
	export, history := filepath.Join(dir, "conv.jsonl"), filepath.Join(dir, "history.jsonl")
	if err := os.WriteFile(export, []byte(convs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(history, []byte(hist.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := func(db string) []string {
		return []string{"-db", db, "-conversations", export, "-history", history, "-progress", "20ms", "-batch", "200"}
	}
	if code, out, errOut := runCmd(t, nil, args(filepath.Join(dir, "clean.db"))...); code != exitOK {
		t.Fatalf("clean run: %d\n%s%s", code, out, errOut)
	}

	db := filepath.Join(dir, "killed.db")
	cmd := exec.Command(os.Args[0], args(db)...)
	cmd.Env = append(os.Environ(), killedEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	killed := false
	for sc.Scan() {
		var n int
		if i := strings.Index(sc.Text(), "messages "); i >= 0 {
			fmt.Sscanf(sc.Text()[i:], "messages %d imported", &n)
		}
		if n >= 3000 && !killed {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatal("the import ended before it could be killed")
	}
	code, out, errOut := runCmd(t, nil, args(db)...)
	if code != exitOK {
		t.Fatalf("rerun: %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "messages:      0 imported") || strings.Contains(out, "15000 imported") {
		t.Fatalf("the rerun did not continue a cut import:\n%s", out)
	}
	want, got := dumpDB(t, filepath.Join(dir, "clean.db")), dumpDB(t, db)
	if want != got {
		t.Fatalf("killed and rerun:\n%s\nwant\n%s", got, want)
	}
}

// dumpDB is a digest of the tables an import writes.
func dumpDB(t *testing.T, path string) string {
	st, err := store.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var b strings.Builder
	for _, q := range []string{
		"SELECT * FROM conversations ORDER BY id",
		"SELECT * FROM members ORDER BY conv_id, client_id",
		"SELECT * FROM messages ORDER BY conv_id, seq",
		"SELECT source, conv_id, state FROM import_progress ORDER BY conv_id",
	} {
		rows, err := st.DB().Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		h, n := sha256.New(), 0
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
		rows.Close()
		fmt.Fprintf(&b, "%s: %d rows %x\n", q, n, h.Sum(nil)[:8])
	}
	return b.String()
}

// Command lcimport imports a LeanCloud app's conversations and message
// history into this project's store (SQLite or PostgreSQL), keeping
// LeanCloud's conversation ids, message ids and timestamps, so that users
// find their history after the app switches servers.
//
//	lcimport -db chat.db -conversations _Conversation.json \
//	    -lc-url https://abcd1234.lc-cn-n1-shared.com -lc-app-id $APP_ID   # master key from $LC_MASTER_KEY
//	lcimport -db postgres://... -conversations _Conversation.json -history ./history/
//
// Progress goes to stderr, the summary to stdout. Running it again is safe:
// it writes nothing that is there already, and continues a run that was
// stopped. Run it before starting the hub on the store (or restart the hub
// afterwards). See docs/migrating-from-leancloud.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/leanhub/realtime/importer"
	"github.com/leanhub/realtime/store"
)

func main() {
	// The first SIGINT or SIGTERM stops the import after its current
	// transaction; a second one kills the process as usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitFatal = 1 // the import stopped; what was written stays, run again to continue
	exitUsage = 2
)

// list is a repeatable flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

type options struct {
	db            string
	conversations list
	history       list
	lcURL         string
	lcAppID       string
	lcKey         string
	lcKeyFile     string
	lcAppWide     bool
	lcConcurrency int
	saveHistory   string
	unread        string
	batch         int
	refresh       bool
	dryRun        bool
	progress      time.Duration
}

const usageHead = `lcimport imports a LeanCloud app's conversations and message history into a
realtime store, keeping LeanCloud's ids and timestamps.

  lcimport -db chat.db -conversations _Conversation.json -lc-url https://abcd1234.lc-cn-n1-shared.com -lc-app-id APPID
  lcimport -db 'postgres://user@host/db' -conversations _Conversation.json -history ./history/

The conversation export is the console's JSON export of _Conversation (JSON
lines, a JSON array or {"results": [...]}). History comes from LeanCloud's
REST API (GET /1.2/rtm/conversations/{id}/messages with the master key, taken
from $LC_MASTER_KEY, -lc-master-key-file or -lc-master-key) or from files of
history items downloaded before (JSON arrays or JSON lines, any order).

Running it again writes nothing that is stored already and continues a
stopped run. Import before starting the hub on the store, or restart the hub
afterwards. Progress goes to stderr, the summary to stdout. Exit status: 0
done (skipped records are in the summary), 1 stopped by an error (run again
to continue), 2 bad flags.

Flags:
`

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("lcimport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.db, "db", "", "store: a SQLite file path, or a postgres:// URL (as examples/chat's -db)")
	fs.Var(&o.conversations, "conversations", "_Conversation export file (repeatable)")
	fs.Var(&o.history, "history", "history file, or a directory of *.json, *.jsonl and *.ndjson files (repeatable)")
	fs.StringVar(&o.lcURL, "lc-url", "", "LeanCloud REST API server of the old app, e.g. https://abcd1234.lc-cn-n1-shared.com")
	fs.StringVar(&o.lcAppID, "lc-app-id", "", "LeanCloud app id")
	fs.StringVar(&o.lcKey, "lc-master-key", "", "LeanCloud master key (visible to other users of this machine: prefer $LC_MASTER_KEY or -lc-master-key-file)")
	fs.StringVar(&o.lcKeyFile, "lc-master-key-file", "", "file holding the LeanCloud master key")
	fs.BoolVar(&o.lcAppWide, "lc-app-wide", false, "pull history with the app-wide GET /1.2/rtm/messages instead of per conversation (a resumed run fetches it all again)")
	fs.IntVar(&o.lcConcurrency, "lc-concurrency", 4, "conversations fetched from LeanCloud at once")
	fs.StringVar(&o.saveHistory, "lc-save-history", "", "also save fetched history into this directory (one JSON lines file per conversation), for -history later")
	fs.StringVar(&o.unread, "unread", "all-read", `where members' read cursors are left: "all-read" (nothing imported is unread) or "after-own" (unread since each member's own last message)`)
	fs.IntVar(&o.batch, "batch", 500, "messages per transaction")
	fs.BoolVar(&o.refresh, "refresh", false, "look again at conversations imported completely before (fetch them again from LeanCloud)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "read and check everything, write nothing")
	fs.DurationVar(&o.progress, "progress", 2*time.Second, "interval of progress lines on stderr (0: none)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	switch {
	case len(o.conversations) == 0:
		return nil, errors.New("-conversations is required: the _Conversation export")
	case o.db == "" && !o.dryRun:
		return nil, errors.New("-db is required (or -dry-run)")
	case o.lcURL != "" && len(o.history) > 0:
		return nil, errors.New("history comes from -history files or from -lc-url, not both")
	case o.lcURL == "" && (o.lcAppWide || o.saveHistory != ""):
		return nil, errors.New("-lc-app-wide and -lc-save-history need -lc-url")
	case o.unread != "all-read" && o.unread != "after-own":
		return nil, fmt.Errorf("-unread %q: want all-read or after-own", o.unread)
	}
	return &o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "lcimport:", err)
		return exitUsage
	}
	cfg, closeHTTP, err := o.config(stderr, getenv)
	if err != nil {
		fmt.Fprintln(stderr, "lcimport:", err)
		return exitUsage
	}
	defer closeHTTP()

	var target importer.Target
	if !o.dryRun {
		st, err := store.Open(ctx, o.db, nil)
		if err != nil {
			fmt.Fprintln(stderr, "lcimport:", err)
			return exitFatal
		}
		defer st.Close()
		target = st
		fmt.Fprintln(stderr, "lcimport: a hub serving this store must not run during the import (or must be restarted after it)")
	}
	im, err := importer.New(target, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "lcimport:", err)
		return exitUsage
	}
	sum, err := im.Run(ctx)
	_, _ = sum.WriteTo(stdout)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "lcimport: interrupted; what was imported stays, run the same command again to continue")
		} else {
			fmt.Fprintln(stderr, "lcimport:", err)
			fmt.Fprintln(stderr, "lcimport: stopped; what was imported stays, run the same command again to continue")
		}
		return exitFatal
	}
	return exitOK
}

// config turns the flags into an importer.Config; closeHTTP releases the
// LeanCloud client's connections.
func (o *options) config(stderr io.Writer, getenv func(string) string) (*importer.Config, func(), error) {
	cfg := &importer.Config{BatchSize: o.batch, Refresh: o.refresh, DryRun: o.dryRun, ProgressEvery: o.progress}
	if o.progress > 0 {
		cfg.Progress = stderr
	}
	if o.unread == "after-own" {
		cfg.Unread = importer.UnreadAfterOwn
	}
	for _, p := range o.conversations {
		if _, err := os.Stat(p); err != nil {
			return nil, nil, err
		}
		cfg.Conversations = append(cfg.Conversations, importer.File(p))
	}
	for _, p := range o.history {
		files, err := historyFiles(p)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range files {
			cfg.History = append(cfg.History, importer.File(f))
		}
	}
	closeHTTP := func() {}
	if o.lcURL != "" {
		key, err := o.masterKey(stderr, getenv)
		if err != nil {
			return nil, nil, err
		}
		hc := &http.Client{Timeout: 60 * time.Second}
		closeHTTP = hc.CloseIdleConnections
		cfg.LeanCloud = &importer.Client{BaseURL: o.lcURL, AppID: o.lcAppID, MasterKey: key, HTTPClient: hc,
			Concurrency: o.lcConcurrency}
		cfg.AppWide = o.lcAppWide
		if o.saveHistory != "" {
			if err := os.MkdirAll(o.saveHistory, 0o755); err != nil {
				return nil, nil, err
			}
			cfg.SaveFetched = saveTo(o.saveHistory)
		}
	}
	return cfg, closeHTTP, nil
}

// masterKey takes the key from -lc-master-key-file, -lc-master-key or
// $LC_MASTER_KEY, in that order.
func (o *options) masterKey(stderr io.Writer, getenv func(string) string) (string, error) {
	switch {
	case o.lcKeyFile != "":
		b, err := os.ReadFile(o.lcKeyFile)
		if err != nil {
			return "", fmt.Errorf("read the master key: %w", err)
		}
		if k := strings.TrimSpace(string(b)); k != "" {
			return k, nil
		}
		return "", fmt.Errorf("the master key file %s is empty", o.lcKeyFile)
	case o.lcKey != "":
		fmt.Fprintln(stderr, "lcimport: warning: -lc-master-key is visible in the process list; prefer $LC_MASTER_KEY or -lc-master-key-file")
		return o.lcKey, nil
	case getenv("LC_MASTER_KEY") != "":
		return strings.TrimSpace(getenv("LC_MASTER_KEY")), nil
	}
	return "", errors.New("-lc-url needs the master key: set $LC_MASTER_KEY, -lc-master-key-file or -lc-master-key")
}

// historyFiles expands a -history argument: a file, or the *.json,
// *.jsonl and *.ndjson files of a directory, sorted.
func historyFiles(p string) ([]string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".json" || ext == ".jsonl" || ext == ".ndjson") {
			out = append(out, filepath.Join(p, e.Name()))
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("no *.json, *.jsonl or *.ndjson files in %s", p)
	}
	return out, nil
}

// saveTo writes fetched history as dir/<name>.jsonl, whole files only
// (written to a temporary name, then renamed).
func saveTo(dir string) func(string, []json.RawMessage) error {
	return func(name string, items []json.RawMessage) error {
		tmp, err := os.CreateTemp(dir, name+".*.tmp")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		var line bytes.Buffer
		for _, it := range items {
			line.Reset()
			if err := json.Compact(&line, it); err != nil {
				line.Write(it) // kept as LeanCloud sent it; the import reports it
			}
			line.WriteByte('\n')
			if _, err := tmp.Write(line.Bytes()); err != nil {
				tmp.Close()
				return err
			}
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), filepath.Join(dir, name+".jsonl"))
	}
}

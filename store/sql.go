package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/pgdriver"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/leanhub/realtime"
)

// Defaults used for zero Options fields.
const (
	// DefaultMaxMessageSize is the largest message body (len(Data) +
	// len(Binary)) accepted: 5 KiB, LeanCloud's limit.
	DefaultMaxMessageSize = 5 << 10
	// DefaultMaxMembers is the largest member count of a conversation.
	// LeanCloud capped ordinary conversations lower; a self-hosted server
	// can afford more, and chat rooms (transient) keep no members at all.
	DefaultMaxMembers = 10000
	// DefaultGroupCommitWindow is how long the writer waits for more
	// appends when several callers were sending at the end of the
	// previous batch.
	DefaultGroupCommitWindow = time.Millisecond
	// DefaultMaxBatch caps the number of messages written in one
	// transaction.
	DefaultMaxBatch = 256
)

// Options tune a SQL store. A nil *Options and zero fields mean defaults.
type Options struct {
	// MaxMessageSize is the largest len(Data)+len(Binary) of a message, in
	// bytes; larger messages fail with realtime.ErrMessageTooLarge.
	// Default DefaultMaxMessageSize (5 KiB).
	MaxMessageSize int
	// MaxMembers is the largest member count of a conversation; creating or
	// growing a conversation beyond it fails with realtime.ErrConvFull.
	// Default DefaultMaxMembers (10000).
	MaxMembers int
	// GroupCommitWindow is the longest time the append writer waits to
	// gather more concurrent appends into one transaction. It only waits
	// when more than one AppendMessages call was in progress when it
	// answered the previous batch (so a lone sender pays no delay), and
	// stops waiting as soon as that many calls are queued. Default
	// DefaultGroupCommitWindow (1ms); negative disables waiting (batches
	// are then whatever is already queued).
	GroupCommitWindow time.Duration
	// MaxBatch caps the messages in one group-commit transaction. Default
	// DefaultMaxBatch (256).
	MaxBatch int
	// Logger receives infrastructure failures of the writer. Default
	// slog.Default().
	Logger *slog.Logger
	// Clock returns the current time; tests inject a fake one. Default
	// time.Now.
	Clock func() time.Time
	// ReadConns is the size of the read connection pool of a SQLite file
	// opened by Open. Default max(4, GOMAXPROCS).
	ReadConns int
	// MaxConns bounds the PostgreSQL connection pool of a store opened by
	// Open: at most that many connections are open at once (idle ones
	// are kept up to the same number). Work beyond it waits for a
	// connection until its context ends, so a burst never exceeds the
	// server's max_connections (100 by default: leave room for every
	// hub process and other clients). Default DefaultMaxConns. A store
	// made with New uses the pool of the bun.DB it is given.
	MaxConns int
}

// DefaultMaxConns is the default PostgreSQL pool bound (Options.MaxConns).
const DefaultMaxConns = 16

// SQL is a realtime.Store and realtime.DeviceStore on SQLite or PostgreSQL
// through bun. Create it with Open or New; it is safe for concurrent use;
// Close it when done.
type SQL struct {
	w, r   *bun.DB // writer and reader; the same DB except for SQLite files
	pg     bool
	ownDBs []*bun.DB // closed by Close

	// wmu serializes write transactions on SQLite (one writer at a time,
	// so BEGIN never has to upgrade a read lock and fail with SQLITE_BUSY).
	wmu sync.Mutex

	maxSize    int
	maxMembers int
	window     time.Duration
	maxBatch   int
	log        *slog.Logger
	clock      func() time.Time

	mu         sync.RWMutex // guards closed against concurrent enqueues
	closed     bool
	reqs       chan *appendReq
	quit       chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error

	batches, batchedMsgs atomic.Int64
	retries              atomic.Int64
	inflight             atomic.Int64 // AppendMessages calls in progress

	ann atomic.Pointer[announcer] // set by Announce

	cache headCache // owned by the append writer goroutine
	// imports counts committed imports (import.go); the writer drops its
	// cache when it changed, because imports move conversation heads.
	imports atomic.Int64
	// SQLite batch statements (see prepareNew); owned by the writer
	stmts      map[string]*sql.Stmt
	unprepared []string
}

// Stats are counters of the append writer.
type Stats struct {
	Batches  int64 // group-commit transactions written
	Messages int64 // messages (stored or duplicate) answered by them
	// Failures counts batch writes that failed and were tried again (or
	// given up): a conflict with another process, a deadlock, an outage.
	Failures int64
}

// Stats returns the append writer's counters; Messages/Batches is the mean
// group-commit batch size.
func (s *SQL) Stats() Stats {
	return Stats{Batches: s.batches.Load(), Messages: s.batchedMsgs.Load(), Failures: s.retries.Load()}
}

var (
	_ realtime.Store       = (*SQL)(nil)
	_ realtime.DeviceStore = (*SQL)(nil)
)

// ErrClosed is returned by methods called after Close.
var ErrClosed = errors.New("store: closed")

// Open connects to dsn, migrates the schema and starts the append writer.
//
// A dsn beginning with postgres:// or postgresql:// selects PostgreSQL
// (bun's pgdriver; parameters it does not know, such as search_path, are
// sent as connection parameters). Anything else is a SQLite database: a
// path, a "file:" URI or ":memory:", opened with modernc.org/sqlite in WAL
// mode with a busy timeout, foreign keys on and synchronous=NORMAL; writes go
// through one connection (64 MiB page cache, WAL checkpointed every 16384
// pages: batches rewrite the same conversation, member and index pages,
// which a checkpoint then copies once instead of every few batches) and
// reads through a small pool (a :memory: database uses one connection for
// everything).
func Open(ctx context.Context, dsn string, opts *Options) (*SQL, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		sqldb := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn)))
		n := DefaultMaxConns
		if opts != nil && opts.MaxConns > 0 {
			n = opts.MaxConns
		}
		sqldb.SetMaxOpenConns(n)
		sqldb.SetMaxIdleConns(n)
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
		db := bun.NewDB(sqldb, pgdialect.New())
		s, err := newSQL(ctx, db, db, opts)
		if err != nil {
			db.Close()
			return nil, err
		}
		s.ownDBs = []*bun.DB{db}
		return s, nil
	}
	return openSQLite(ctx, dsn, opts)
}

func openSQLite(ctx context.Context, dsn string, opts *Options) (*SQL, error) {
	path, query, _ := strings.Cut(dsn, "?")
	uri := strings.HasPrefix(path, "file:")
	path = strings.TrimPrefix(path, "file:")
	if !uri {
		// A plain path goes into a file: URI, where '#' would start a
		// fragment (cutting the path short) and '%' an escape: SQLite
		// decodes %HH in URI paths.
		path = strings.NewReplacer("%", "%25", "#", "%23").Replace(path)
	}
	if path == "" {
		return nil, fmt.Errorf("store: empty SQLite path in %q", dsn)
	}
	memory := path == ":memory:"
	params := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	if !memory {
		params += "&_pragma=journal_mode(WAL)"
	}
	if query != "" {
		params += "&" + query
	}
	base := "file:" + path + "?" + params
	wsql, err := sql.Open("sqlite", base+"&_txlock=immediate&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(16384)")
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	wsql.SetMaxOpenConns(1)
	wsql.SetMaxIdleConns(1)
	wsql.SetConnMaxLifetime(0)
	wsql.SetConnMaxIdleTime(0)
	w := bun.NewDB(wsql, sqlitedialect.New())
	r := w
	if !memory {
		rsql, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("store: open sqlite: %w", err)
		}
		n := 4
		if opts != nil && opts.ReadConns > 0 {
			n = opts.ReadConns
		} else if p := runtime.GOMAXPROCS(0); p > n {
			n = p
		}
		rsql.SetMaxOpenConns(n)
		rsql.SetMaxIdleConns(n)
		r = bun.NewDB(rsql, sqlitedialect.New())
	}
	s, err := newSQL(ctx, w, r, opts)
	if err != nil {
		w.Close()
		if r != w {
			r.Close()
		}
		return nil, err
	}
	s.ownDBs = []*bun.DB{w}
	if r != w {
		s.ownDBs = append(s.ownDBs, r)
	}
	return s, nil
}

// New uses an existing bun.DB (sqlitedialect or pgdialect), migrates the
// schema and starts the append writer. Close stops the writer but leaves db
// open. On SQLite, give db a busy timeout; New serializes its own writes.
func New(ctx context.Context, db *bun.DB, opts *Options) (*SQL, error) {
	return newSQL(ctx, db, db, opts)
}

func newSQL(ctx context.Context, w, r *bun.DB, opts *Options) (*SQL, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	s := &SQL{
		w: w, r: r,
		maxSize:    o.MaxMessageSize,
		maxMembers: o.MaxMembers,
		window:     o.GroupCommitWindow,
		maxBatch:   o.MaxBatch,
		log:        o.Logger,
		clock:      o.Clock,
	}
	switch name := w.Dialect().Name(); name {
	case dialect.PG:
		s.pg = true
	case dialect.SQLite:
	default:
		return nil, fmt.Errorf("store: unsupported dialect %s", name)
	}
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxMessageSize
	}
	if s.maxMembers <= 0 {
		s.maxMembers = DefaultMaxMembers
	}
	if s.window == 0 {
		s.window = DefaultGroupCommitWindow
	}
	if s.maxBatch <= 0 {
		s.maxBatch = DefaultMaxBatch
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	s.reqs = make(chan *appendReq, 1024)
	s.quit = make(chan struct{})
	s.writerDone = make(chan struct{})
	go s.writer()
	return s, nil
}

// Ping checks that the database answers (one round trip on the writer's
// pool; for a readiness probe). The schema is migrated by Open and New
// before they return, so a store that answers is ready.
func (s *SQL) Ping(ctx context.Context) error {
	if s.isClosed() {
		return errors.New("store: closed")
	}
	var one int
	return s.w.NewRaw("SELECT 1").Scan(ctx, &one)
}

// DB returns the bun.DB the store writes with (for tests and tools).
func (s *SQL) DB() *bun.DB { return s.w }

// Close stops accepting appends, waits for queued ones to be written, stops
// the writer and closes the databases Open opened.
func (s *SQL) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.quit)
		<-s.writerDone
		for _, st := range s.stmts {
			st.Close()
		}
		for _, db := range s.ownDBs {
			if err := db.Close(); err != nil && s.closeErr == nil {
				s.closeErr = err
			}
		}
	})
	return s.closeErr
}

func (s *SQL) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

func (s *SQL) nowMs() int64 { return s.clock().UnixMilli() }

// writeTx runs fn in a write transaction. On SQLite, write transactions are
// serialized in-process (and the writer connection begins IMMEDIATE).
func (s *SQL) writeTx(ctx context.Context, fn func(tx bun.Tx) error) error {
	if s.isClosed() {
		return ErrClosed
	}
	if !s.pg {
		s.wmu.Lock()
		defer s.wmu.Unlock()
	}
	return s.w.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(tx) })
}

// forUpdate is the row-locking suffix of a SELECT inside a write
// transaction: FOR UPDATE on PostgreSQL; nothing on SQLite, whose write
// transactions are serialized already.
func (s *SQL) forUpdate() string {
	if s.pg {
		return " FOR UPDATE"
	}
	return ""
}

// newID returns 24 lowercase hex digits: 4 bytes of Unix seconds (so ids
// sort roughly by creation, like a MongoDB ObjectId) and 8 random bytes.
func newID(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(now.Unix()))
	_, _ = rand.Read(b[4:])
	return hex.EncodeToString(b[:])
}

// msgIDPrefix and msgIDCounter make message ids: like a MongoDB ObjectId,
// 4 bytes of Unix seconds, 5 random bytes fixed per process and a 3-byte
// counter, so the ids one process writes increase and land at the right
// edge of the primary-key index instead of on random pages of it.
var (
	msgIDPrefix  [5]byte
	msgIDCounter atomic.Uint32
)

func init() {
	var b [4]byte
	_, _ = rand.Read(msgIDPrefix[:])
	_, _ = rand.Read(b[:])
	msgIDCounter.Store(binary.BigEndian.Uint32(b[:]))
}

// newMsgID returns a message id: 24 lowercase hex digits, increasing within
// a process (see msgIDPrefix).
func newMsgID(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(now.Unix()))
	copy(b[4:9], msgIDPrefix[:])
	c := msgIDCounter.Add(1)
	b[9], b[10], b[11] = byte(c>>16), byte(c>>8), byte(c)
	return hex.EncodeToString(b[:])
}

// validID reports whether id is 24 lowercase hex digits.
func validID(id string) bool {
	if len(id) != 24 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// MaxClientIDLength is the longest client id accepted, in bytes.
const MaxClientIDLength = 64

// validClientID: 1..64 bytes of valid UTF-8 without control characters.
func validClientID(id string) bool {
	if id == "" || len(id) > MaxClientIDLength || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// validText: text both databases can store (UTF-8, no NUL).
func validText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func timeMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

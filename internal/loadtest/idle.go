package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// IdleResult holds the figures of the idle scenario.
type IdleResult struct {
	Sockets      int     `json:"sockets"`
	LoggedIn     int64   `json:"logged_in"`
	LoginSeconds float64 `json:"login_seconds"`
	LoginsPerSec float64 `json:"logins_per_sec"`
	// Dropped counts sockets the server closed while they were held.
	Dropped int64 `json:"dropped"`

	PID            int     `json:"server_pid,omitempty"`
	RSSBeforeKiB   int64   `json:"server_rss_before_kib,omitempty"`
	RSSLoggedInKiB int64   `json:"server_rss_logged_in_kib,omitempty"`
	RSSSettledKiB  int64   `json:"server_rss_settled_kib,omitempty"`
	SettleSeconds  float64 `json:"settle_seconds"`
	// RSSPerSocketKiB is (settled - before) / sockets.
	RSSPerSocketKiB    float64 `json:"server_rss_per_socket_kib,omitempty"`
	ServerMaxOpenFiles string  `json:"server_max_open_files,omitempty"`
	ClientMaxOpenFiles uint64  `json:"client_max_open_files"`
}

// Summary is the human report.
func (r *IdleResult) Summary() string {
	s := fmt.Sprintf(`idle: %d sockets logged in (%d wanted) in %.1fs (%.0f logins/s), %d dropped while held
  client open-file limit %d`, r.LoggedIn, r.Sockets, r.LoginSeconds, r.LoginsPerSec, r.Dropped, r.ClientMaxOpenFiles)
	if r.PID > 0 {
		s += fmt.Sprintf(`
  server pid %d (max open files %s): RSS %d KiB before, %d KiB logged in, %d KiB after %.0fs settle
  server RSS per socket: %.1f KiB`, r.PID, r.ServerMaxOpenFiles, r.RSSBeforeKiB, r.RSSLoggedInKiB, r.RSSSettledKiB, r.SettleSeconds, r.RSSPerSocketKiB)
	}
	return s
}

// ProcRSS reads VmRSS (KiB) of a process from /proc (Linux, same machine).
func ProcRSS(pid int) (int64, error) {
	v, err := procField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0, fmt.Errorf("pid %d: empty VmRSS", pid)
	}
	return strconv.ParseInt(f[0], 10, 64)
}

// procMaxOpenFiles reads the soft and hard "Max open files" of a process.
func procMaxOpenFiles(pid int) string {
	v, err := procField(fmt.Sprintf("/proc/%d/limits", pid), "Max open files")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(v)
	if len(f) >= 2 {
		return f[0] + " soft / " + f[1] + " hard"
	}
	return v
}

func procField(path, prefix string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return strings.TrimSpace(rest), nil
		}
	}
	return "", fmt.Errorf("%s: no %q line", path, prefix)
}

func runIdle(ctx context.Context, e *env) error {
	cfg := e.cfg
	out := &IdleResult{Sockets: cfg.Sockets, PID: cfg.PID, SettleSeconds: cfg.Settle.Seconds()}
	e.res.Idle = out
	limit, err := RaiseOpenFiles()
	out.ClientMaxOpenFiles = limit
	if err != nil {
		e.logf("cannot raise the open-file limit: %v", err)
	}
	if limit > 0 && uint64(cfg.Sockets)+64 > limit {
		return fmt.Errorf("idle: %d sockets need more open files than this process may have (%d); raise the hard limit (ulimit -Hn)", cfg.Sockets, limit)
	}
	rss := func(dst *int64) {
		if cfg.PID <= 0 {
			return
		}
		v, err := ProcRSS(cfg.PID)
		if err != nil {
			e.fail("reading server RSS: %v", err)
			return
		}
		*dst = v
	}
	if cfg.PID > 0 {
		out.ServerMaxOpenFiles = procMaxOpenFiles(cfg.PID)
		rss(&out.RSSBeforeKiB)
	}
	var dropped atomic.Int64
	opts := e.clientOptions()
	opts.OnDead = func(*Client, error) { dropped.Add(1) }
	clients := make([]*Client, cfg.Sockets)
	for i := range clients {
		clients[i] = NewClient(fmt.Sprintf("%s-i%06d", cfg.Prefix, i), i, opts)
	}
	defer closeAll(clients)
	var done atomic.Int64
	start := time.Now()
	err = e.phase(ctx, "login", func() string { return fmt.Sprintf("%d of %d logged in", done.Load(), cfg.Sockets) },
		func(ctx context.Context) error {
			return parallel(ctx, len(clients), cfg.Concurrency, &done, func(ctx context.Context, i int) error {
				return clients[i].Login(ctx)
			})
		})
	out.LoggedIn = done.Load()
	out.LoginSeconds = time.Since(start).Seconds()
	out.LoginsPerSec = float64(out.LoggedIn) / out.LoginSeconds
	if err != nil {
		return err
	}
	rss(&out.RSSLoggedInKiB)
	if err := e.phase(ctx, "settle", nil, func(ctx context.Context) error {
		return sleepCtx(ctx, cfg.Settle)
	}); err != nil {
		return err
	}
	rss(&out.RSSSettledKiB)
	if cfg.PID > 0 && cfg.Sockets > 0 {
		out.RSSPerSocketKiB = float64(out.RSSSettledKiB-out.RSSBeforeKiB) / float64(cfg.Sockets)
	}
	if cfg.Hold > 0 {
		if err := e.phase(ctx, "hold", nil, func(ctx context.Context) error { return sleepCtx(ctx, cfg.Hold) }); err != nil {
			return err
		}
	}
	out.Dropped = dropped.Load()
	if out.Dropped > 0 {
		e.fail("idle: the server closed %d of %d idle sockets", out.Dropped, cfg.Sockets)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

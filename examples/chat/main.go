// Command chat is an ordinary chi web app that mounts the LeanMessage hub at
// /im beside its own routes, and serves a browser chat page built on the
// official LeanCloud JS SDK (leancloud-realtime 5.0.0-rc.8).
//
//	go run ./examples/chat                       # SQLite in ./chat.db
//	go run ./examples/chat -db postgres://...    # PostgreSQL
//
// It prints one line with the URL to open and stops cleanly on SIGINT or
// SIGTERM. See README.md beside this file for the flags.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	natsbroker "github.com/leanhub/realtime/broker/nats"
	"github.com/leanhub/realtime/broker/pgnotify"
	"github.com/leanhub/realtime/hooks"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/push"
	"github.com/leanhub/realtime/store"
)

// shutdownTimeout bounds the whole clean shutdown (HTTP server, hub
// sockets, store writes).
const shutdownTimeout = 10 * time.Second

// defaultKeywords is the filter used without -keywords, so that the demo
// shows keyword filtering out of the box.
var defaultKeywords = []string{"badword"}

type options struct {
	addr     string
	db       string
	appID    string
	appKey   string
	master   string
	keywords string
	sdkDir   string
	broker   string
	node     string
	lease    time.Duration
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free port)")
	fs.StringVar(&o.db, "db", "chat.db", "SQLite file path, or a postgres:// URL")
	fs.StringVar(&o.appID, "app-id", "", `LeanCloud app id the hub serves; it refuses others (default: accept any app id; the page uses "chat-example")`)
	fs.StringVar(&o.appKey, "app-key", "", "LeanCloud app key handed to the page")
	fs.StringVar(&o.master, "master-key", "", "LeanCloud master key: turns on the REST API v2 at /im/1.2/rtm for backends (X-LC-Key: {key},master); never handed to the page (default: REST API off)")
	fs.StringVar(&o.keywords, "keywords", "", `file of words to filter, one per line (default: the built-in list "badword")`)
	fs.StringVar(&o.sdkDir, "sdk-dir", "", "folder holding im-browser.min.js (default: look in ./e2e/node_modules and ./node_modules, else use a CDN)")
	fs.StringVar(&o.broker, "broker", "", "join the other processes on this database: nats://host:4222 (NATS), or postgres (LISTEN/NOTIFY on -db); default: a single node")
	fs.StringVar(&o.node, "node", "", "this process's name among the nodes (default: random)")
	fs.DurationVar(&o.lease, "node-lease", 0, "how long a node that stops renewing counts as alive; its clients' will messages go out after it (default 15s)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return &o, nil
}

// run starts the app and blocks until ctx is done or a signal arrives, then
// shuts down. It returns nil after a clean shutdown.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	sdk, err := findSDK(opts.sdkDir)
	if err != nil {
		return err
	}
	filter, err := keywordFilter(opts.keywords)
	if err != nil {
		return err
	}

	st, err := store.Open(ctx, opts.db, &store.Options{Logger: logger})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	broker, closeBroker, err := openBroker(ctx, opts, st)
	if err != nil {
		st.Close()
		return err
	}
	defer closeBroker()
	if broker == nil && isPostgres(opts.db) {
		logger.Info("single node: a second process on this database needs -broker (nats://... or postgres) to deliver to this one's clients")
	}
	h, err := hub.New(st, &hub.Config{
		Broker:    broker,
		Node:      opts.node,
		NodeLease: opts.lease,
		AppID:     opts.appID,
		AppKey:    opts.appKey,
		MasterKey: opts.master,
		Logger:    logger,
		Hooks:     []any{filter},
		// A logging pusher stands in for APNs/FCM. Browsers register no
		// devices, so it only fires for native SDK clients with a token.
		Pusher: push.Log{Logger: logger},
		// Any origin may connect: existing LeanCloud apps (and their test
		// pages) are served from elsewhere. A real deployment lists its
		// origins here.
		AllowedOrigins: nil,
	})
	if err != nil {
		st.Close()
		return fmt.Errorf("start hub: %w", err)
	}

	// Listen before printing, so that -addr 127.0.0.1:0 prints the real port.
	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		h.Shutdown(context.Background())
		st.Close()
		return err
	}
	srv := &http.Server{
		Handler:           newRouter(h, pageConfig{AppID: cmp.Or(opts.appID, "chat-example"), AppKey: opts.appKey}, sdk),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if sdk != "" {
		logger.Info("serving the SDK bundle from disk", "path", sdk)
	} else {
		logger.Info("SDK bundle not found locally; the page loads it from the CDN", "url", sdkCDN+sdkFile)
	}
	fmt.Fprintf(stdout, "chat: open %s in two browser windows\n", pageURL(ln.Addr()))

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		h.Shutdown(context.Background())
		st.Close()
		return err
	}
	stop() // a second signal now kills the process the default way
	logger.Info("shutting down")

	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// Stop taking requests first; websockets are hijacked connections the
	// HTTP server does not track, so the hub closes them itself.
	err = srv.Shutdown(shutdownCtx)
	err = errors.Join(err, h.Shutdown(shutdownCtx), st.Close())
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// pageURL is the URL to open for a listener address; an unspecified host
// (":8080", "0.0.0.0:8080") is shown as localhost.
func pageURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

func keywordFilter(path string) (*hooks.KeywordFilter, error) {
	if path == "" {
		return hooks.NewKeywordFilter(defaultKeywords, nil), nil
	}
	f, err := hooks.LoadKeywordFile(path, nil)
	if err != nil {
		return nil, fmt.Errorf("keywords: %w", err)
	}
	return f, nil
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// openBroker returns the broker -broker names (nil for a single node) and
// what closes it after the hub shut down.
func openBroker(ctx context.Context, o *options, st *store.SQL) (hub.Broker, func(), error) {
	none := func() {}
	switch b := o.broker; {
	case b == "":
		return nil, none, nil
	case b == "postgres":
		if !isPostgres(o.db) {
			return nil, none, errors.New("-broker postgres needs a postgres:// -db")
		}
		pb, err := pgnotify.New(ctx, st, nil)
		if err != nil {
			return nil, none, err
		}
		return pb, none, nil
	case strings.HasPrefix(b, "nats://") || strings.HasPrefix(b, "tls://"):
		if !isPostgres(o.db) {
			return nil, none, errors.New("several nodes share one PostgreSQL database: -broker needs a postgres:// -db")
		}
		nb, err := natsbroker.Connect(b, nil)
		if err != nil {
			return nil, none, fmt.Errorf("connect to NATS: %w", err)
		}
		return nb, nb.Close, nil
	}
	return nil, none, fmt.Errorf("-broker %q: want nats://host:port or postgres", o.broker)
}

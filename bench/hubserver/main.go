// Command hubserver runs the hub for benchmarks: like examples/chat (hub
// mounted at /im, one "http://..." line printed once listening) but
// without the example's hooks and page, with hub.Limits lifted so the load
// measures the engine rather than the per-client limits, and with the
// store's tuning knobs as flags.
//
//	go run ./bench/hubserver -addr 127.0.0.1:0 -db /tmp/bench.db
//	go run ./bench/hubserver -db 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=bench1'
//
// It stops cleanly on SIGINT or SIGTERM (writing the CPU profile, if any).
package main

import (
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
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"

	natsbroker "github.com/leanhub/realtime/broker/nats"
	"github.com/leanhub/realtime/broker/pgnotify"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/store"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hubserver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hubserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on (port 0 picks a free port)")
	db := fs.String("db", "bench.db", "SQLite file path, or a postgres:// URL (add search_path=... for a schema)")
	appID := fs.String("app-id", "", "app id served (default: any)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	sendRate := fs.Float64("send-rate", 1e9, "hub.Limits.SendRate: messages/s per client")
	sendBurst := fs.Int("send-burst", 1<<30, "hub.Limits.SendBurst")
	commandRate := fs.Float64("command-rate", 1e9, "hub.Limits ConversationRate, PatchRate, QueryRate and ReadRate per second (burst the same); 0 keeps the hub's defaults")
	maxMembers := fs.Int("max-members", 1<<14, "hub.Limits.MaxMembers")
	outbound := fs.Int("outbound-queue", 1<<14, "hub.Limits.OutboundQueue: frames waiting per socket before it is closed as a slow consumer")
	window := fs.Duration("group-commit-window", 0, "store.Options.GroupCommitWindow (0: the store's default; negative: no waiting)")
	maxBatch := fs.Int("max-batch", 0, "store.Options.MaxBatch (0: the store's default)")
	readConns := fs.Int("read-conns", 0, "store.Options.ReadConns for SQLite (0: the store's default)")
	maxConns := fs.Int("max-conns", 0, "store.Options.MaxConns: PostgreSQL pool bound (0: the store's default)")
	brokerFlag := fs.String("broker", "", "one of several nodes: nats://host:port, or postgres (LISTEN/NOTIFY on -db)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := store.Open(ctx, *db, &store.Options{Logger: logger, MaxMembers: *maxMembers,
		GroupCommitWindow: *window, MaxBatch: *maxBatch, ReadConns: *readConns, MaxConns: *maxConns})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	var broker hub.Broker
	switch b := *brokerFlag; {
	case b == "":
	case b == "postgres":
		pb, err := pgnotify.New(ctx, st, nil)
		if err != nil {
			st.Close()
			return err
		}
		broker = pb
	default:
		nb, err := natsbroker.Connect(b, nil)
		if err != nil {
			st.Close()
			return err
		}
		defer nb.Close()
		broker = nb
	}
	h, err := hub.New(st, &hub.Config{
		AppID:  *appID,
		Logger: logger,
		Broker: broker,
		Limits: hub.Limits{
			SendRate:      *sendRate,
			SendBurst:     *sendBurst,
			MaxMembers:    *maxMembers,
			OutboundQueue: *outbound,
			// Zero (-command-rate 0) takes the hub's defaults.
			ConversationRate: commandLimit(*commandRate),
			PatchRate:        commandLimit(*commandRate),
			QueryRate:        commandLimit(*commandRate),
			ReadRate:         commandLimit(*commandRate),
		},
	})
	if err != nil {
		st.Close()
		return fmt.Errorf("start hub: %w", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		h.Shutdown(context.Background())
		st.Close()
		return err
	}
	r := chi.NewRouter()
	r.Mount("/im", h)
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	// One line with the URL (the SDK server option), as examples/chat prints.
	fmt.Fprintf(stdout, "hubserver: serving http://%s/im\n", ln.Addr())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		h.Shutdown(context.Background())
		st.Close()
		return err
	}
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(srv.Shutdown(sctx), h.Shutdown(sctx), st.Close())
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// commandLimit is a command family's bucket of rate a second.
func commandLimit(rate float64) hub.Rate {
	return hub.Rate{PerSecond: rate, Burst: int(min(rate, 1<<30))}
}

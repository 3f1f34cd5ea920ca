// Command leanhub is a production LeanMessage (LeanCloud IM) server: the
// hub mounted at -prefix (default /im), with health, readiness and
// Prometheus metrics at the root, configured by flags, LEANHUB_*
// environment variables or a config file.
//
//	go run ./cmd/leanhub                       # SQLite in ./leanhub.db
//	go run ./cmd/leanhub -db postgres://...    # PostgreSQL
//	go run ./cmd/leanhub -h                    # every setting
//
// It prints one line with its URL when it serves. On SIGTERM or SIGINT it
// drains: /readyz answers 503 at once, after -drain-delay every socket gets
// goaway and is closed spread over -drain-timeout (the SDKs reconnect
// elsewhere), then queued work is finished within -shutdown-timeout and it
// exits 0. A second signal stops it at once (exit 1; acknowledged messages
// are already durable). See docs/deploying.md.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	realtime "github.com/leanhub/realtime"
	natsbroker "github.com/leanhub/realtime/broker/nats"
	"github.com/leanhub/realtime/broker/pgnotify"
	"github.com/leanhub/realtime/hooks"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/metrics/prom"
	"github.com/leanhub/realtime/push"
	"github.com/leanhub/realtime/store"
)

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	err := run(context.Background(), os.Args[1:], os.Getenv, sigs, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "leanhub:", err)
		os.Exit(1)
	}
}

// errSecondSignal is run's error when a second signal cut the drain.
var errSecondSignal = errors.New("second signal: stopped without draining")

// run serves until a signal arrives on sigs, then drains and returns nil.
func run(ctx context.Context, args []string, getenv func(string) string, sigs <-chan os.Signal, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(o, stderr)
	logger.Info("leanhub starting", o.summary()...)
	if o.allowedOrigins == "" {
		logger.Warn("any origin may connect from a browser: set -allowed-origins for a public deployment")
	}

	st, err := store.Open(ctx, o.db, &store.Options{
		Logger: logger, MaxConns: o.dbMaxConns, ReadConns: o.dbReadConns,
		GroupCommitWindow: o.groupCommit, MaxBatch: o.maxBatch,
		MaxMessageSize: o.limits.MaxMessageSize,
	})
	if err != nil {
		return fmt.Errorf("open store %s: %w", redactDSN(o.db), err)
	}
	defer st.Close()
	broker, connected, closeBroker, err := openBroker(ctx, o, st)
	if err != nil {
		return err
	}
	defer closeBroker()
	cfg, err := hubConfig(o, logger)
	if err != nil {
		return err
	}
	metrics := prom.New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := metrics.Register(reg); err != nil {
		return err
	}
	cfg.Broker, cfg.Metrics = broker, metrics
	h, err := hub.New(st, cfg)
	if err != nil {
		return fmt.Errorf("start hub: %w", err)
	}
	var draining atomic.Bool
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "leanhub_ready", Help: "1 while /readyz answers 200."},
		func() float64 {
			if draining.Load() || !h.Ready() {
				return 0
			}
			return 1
		}))
	admin := adminHandler(h, st, connected, &draining, reg)

	mux := http.NewServeMux()
	mux.Handle(o.prefix+"/", h)
	mux.Handle("/", admin)
	if o.adminAddr != "" {
		mux = http.NewServeMux()
		mux.Handle(o.prefix+"/", h)
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		h.Shutdown(context.Background())
		return err
	}
	srv := &http.Server{
		Handler:           withRequestID(mux, logger),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			ln.Close()
			h.Shutdown(context.Background())
			return fmt.Errorf("TLS: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	serveErr := make(chan error, 2)
	go func() {
		if srv.TLSConfig != nil {
			serveErr <- srv.ServeTLS(ln, "", "")
		} else {
			serveErr <- srv.Serve(ln)
		}
	}()
	var adminSrv *http.Server
	adminURL := ""
	if o.adminAddr != "" {
		aln, err := net.Listen("tcp", o.adminAddr)
		if err != nil {
			srv.Close()
			h.Shutdown(context.Background())
			return fmt.Errorf("-admin-addr: %w", err)
		}
		adminSrv = &http.Server{Handler: admin, ReadHeaderTimeout: 10 * time.Second}
		go func() { serveErr <- adminSrv.Serve(aln) }()
		adminURL = baseURL("http", aln.Addr())
	}
	url := baseURL(scheme, ln.Addr()) + o.prefix
	if adminURL != "" {
		fmt.Fprintf(stdout, "leanhub: serving %s (admin %s)\n", url, adminURL)
	} else {
		fmt.Fprintf(stdout, "leanhub: serving %s\n", url)
	}

	select {
	case sig := <-sigs:
		logger.Info("signal: draining", "signal", sig.String(), "drain_delay", o.drainDelay, "drain_timeout", o.drainTimeout)
	case <-ctx.Done():
	case err := <-serveErr:
		h.Shutdown(context.Background())
		return err
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- drain(o, h, srv, adminSrv, &draining, logger) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		logger.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
		return nil
	case sig := <-sigs:
		logger.Warn("second signal: stopping now", "signal", sig.String())
		return errSecondSignal
	}
}

// drain takes the node out of service: readiness false, wait for the load
// balancer, goaway and close the sockets, finish queued work.
func drain(o *options, h *hub.Hub, srv, adminSrv *http.Server, draining *atomic.Bool, logger *slog.Logger) error {
	draining.Store(true)
	time.Sleep(o.drainDelay)
	sockets := h.SocketCount()
	dctx, cancel := context.WithTimeout(context.Background(), o.drainTimeout)
	err := h.Drain(dctx)
	cancel()
	if err != nil {
		logger.Warn("drain: sockets still open at the deadline; closing them", "left", h.SocketCount())
	}
	logger.Info("drained", "sockets", sockets)
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	err = errors.Join(srv.Shutdown(sctx), h.Shutdown(sctx))
	if adminSrv != nil {
		err = errors.Join(err, adminSrv.Shutdown(sctx))
	}
	return err
}

func newLogger(o *options, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(o.logLevel))
	hopts := &slog.HandlerOptions{Level: level}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}

// baseURL is the URL of a listener; an unspecified host is shown as
// localhost.
func baseURL(scheme string, addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// hubConfig turns the options into a hub.Config (without broker and
// metrics).
func hubConfig(o *options, logger *slog.Logger) (*hub.Config, error) {
	c := &hub.Config{
		AppID: o.appID, AppKey: o.appKey, MasterKey: o.secret["master-key"],
		RequireLoginSignature: o.requireLoginSig, RequireConversationSignature: o.requireConvSig,
		RequireBlacklistSignature: o.requireBlackSig, SignatureMaxAge: o.signatureMaxAge,
		PublicURL: o.publicURL, Logger: logger, HookTimeout: o.hookTimeout,
		PushTemplate: o.pushTemplate, DisableEdit: o.disableEdit, DisableRecall: o.disableRecall,
		Node: o.node, NodeLease: o.nodeLease, SessionTokenTTL: o.sessionTTL,
		TrustForwardedFor: o.trustProxy, PingInterval: o.pingInterval, PingTimeout: o.pingTimeout,
		LoginTimeout: o.loginTimeout, WriteTimeout: o.writeTimeout, Limits: o.limits,
	}
	if s := o.secret["session-secret"]; s != "" {
		c.SessionSecret = []byte(s)
	}
	if o.hookFailure == "refuse" {
		c.HookFailure = hub.HookFailureRefuse
	}
	switch o.memberChange {
	case "creator":
		c.MemberChange = hub.CreatorMayChange
	case "nobody":
		c.MemberChange = hub.NobodyMayChange
	}
	if o.visibility == "members" {
		c.ConversationVisibility = hub.VisibleToMembers
	}
	switch o.allowedOrigins {
	case "":
	case "none":
		c.AllowedOrigins = []string{}
	default:
		for _, p := range strings.Split(o.allowedOrigins, ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.AllowedOrigins = append(c.AllowedOrigins, p)
			}
		}
	}
	if o.keywords != "" {
		f, err := hooks.LoadKeywordFile(o.keywords, nil)
		if err != nil {
			return nil, fmt.Errorf("-keywords: %w", err)
		}
		c.Hooks = append(c.Hooks, f)
	}
	p, err := pusher(o)
	if err != nil {
		return nil, err
	}
	c.Pusher = p
	return c, nil
}

// pusher builds the push providers the options configure (nil: none).
func pusher(o *options) (realtime.Pusher, error) {
	m := push.Multi{}
	if k := o.secret["apns-key"]; k != "" {
		key, err := push.ParseAPNsKey([]byte(k))
		if err != nil {
			return nil, fmt.Errorf("APNs key: %w", err)
		}
		a, err := push.NewAPNs(push.APNsConfig{
			Keys:     map[string]push.APNsKey{o.apnsTeamID: {KeyID: o.apnsKeyID, Key: key}},
			BundleID: o.apnsBundleID,
		})
		if err != nil {
			return nil, err
		}
		m[realtime.PlatformIOS] = a
	}
	if sa := o.secret["fcm-service-account"]; sa != "" {
		f, err := push.NewFCM(push.FCMConfig{ServiceAccountJSON: []byte(sa), ProjectID: o.fcmProjectID})
		if err != nil {
			return nil, err
		}
		m[realtime.PlatformAndroid] = f
	}
	if o.webhookURL != "" {
		m[""] = &push.Webhook{URL: o.webhookURL, Secret: []byte(o.secret["webhook-secret"])}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// openBroker returns the broker -broker names (nil for a single node),
// whether it is connected (for /readyz) and what closes it after the hub
// shut down.
func openBroker(ctx context.Context, o *options, st *store.SQL) (hub.Broker, func() bool, func(), error) {
	none := func() {}
	always := func() bool { return true }
	switch b := o.broker; {
	case b == "":
		return nil, always, none, nil
	case !isPostgres(o.db):
		return nil, nil, none, errors.New("-broker: several nodes share one PostgreSQL database: -db must be a postgres:// URL")
	case b == "postgres":
		pb, err := pgnotify.New(ctx, st, nil)
		if err != nil {
			return nil, nil, none, err
		}
		return pb, pb.Connected, none, nil
	case strings.HasPrefix(b, "nats://") || strings.HasPrefix(b, "tls://"):
		nb, err := natsbroker.Connect(b, nil)
		if err != nil {
			return nil, nil, none, fmt.Errorf("connect to NATS %s: %w", b, err)
		}
		return nb, nb.Connected, nb.Close, nil
	}
	return nil, nil, none, fmt.Errorf("-broker %q: want nats://host:port or postgres", o.broker)
}

// adminHandler serves /healthz, /readyz and /metrics.
func adminHandler(h *hub.Hub, st *store.SQL, brokerConnected func() bool, draining *atomic.Bool, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		notReady := func(why string) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, why)
		}
		if draining.Load() {
			notReady("draining")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := st.Ping(ctx); err != nil {
			notReady("store unreachable")
			return
		}
		if !brokerConnected() {
			notReady("broker not connected")
			return
		}
		if !h.Ready() {
			notReady("hub not ready (joining the other nodes, or shutting down)")
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

type requestIDKey struct{}

// withRequestID gives every HTTP request an id (X-Request-Id from the
// proxy, else a new one), echoed in the response and logged with the
// request at debug level. Websocket upgrades are logged by the hub.
func withRequestID(next http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		if logger.Enabled(r.Context(), slog.LevelDebug) {
			logger.Debug("http request", "request_id", id, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

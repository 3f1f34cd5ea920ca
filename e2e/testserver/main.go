// Command testserver is a test-only chi app for the e2e SDK tests: it mounts
// the LeanMessage hub at /im with a few hooks the tests provoke, and serves
// POST /sign, the signature endpoint an app's own server offers the SDK's
// signatureFactory, conversationSignatureFactory and
// blacklistSignatureFactory.
//
//	go run ./e2e/testserver -addr 127.0.0.1:0 -db test.db -app-id APP \
//	    [-master-key KEY [-require login,conversation,blacklist]] [-private-groups]
//
// Hooks:
//   - MessageReceived drops every message whose body contains "DROP-ME"
//     (the sender's send fails with 4402, appCode 1001);
//   - ConversationStart refuses conversations named "forbidden" (4305,
//     appCode 2002).
//
// With -master-key the hub requires the signatures -require lists (default
// login and conversation). /sign answers {signature, timestamp, nonce} for
// {clientId, convId, members, action} with action "" or "login", "create",
// "invite", "kick", "conversation-block-clients" or
// "conversation-unblock-clients". It signs for anyone who asks: never
// expose it outside tests.
//
// -private-groups sets hub.Config.ConversationVisibility to
// VisibleToMembers: queries find only one's own groups and nobody joins a
// group by its id.
//
// createIMClient(AV.User): the hub's UserResolver takes session tokens
// "valid-<objectId>" as the user <objectId> and refuses every other token
// (4102), so POST /im/1.1/rtm/sign signs logins for those users.
//
// Service (system) conversations, through the Go API (the SDK cannot
// create them):
//   - POST /service/conversations {name, attrs} -> {id, createdAt}
//     (hub.CreateConversation with System);
//   - POST /service/messages {convId, from, text, to} -> {id, timestamp}
//     (hub.Send with SendOptions.System; the body is a TextMessage; with
//     "to" the message goes to those subscribers only, else it is a
//     broadcast to every subscriber).
//
// Like /sign, these are open to anyone: never expose them outside tests.
//
// It prints one line with its http:// base URL and stops cleanly on SIGINT
// or SIGTERM.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/store"
	"github.com/leanhub/realtime/typedmsg"
)

const shutdownTimeout = 10 * time.Second

// What the hooks react to, and the codes they answer with.
const (
	dropMarker      = "DROP-ME"
	dropAppCode     = 1001
	dropDetail      = "dropped by the test hook"
	forbiddenName   = "forbidden"
	forbiddenCode   = 2002
	forbiddenDetail = "conversation name refused by the test hook"
)

type options struct {
	addr      string
	db        string
	appID     string
	appKey    string
	masterKey string
	// Which signatures the hub requires (with masterKey).
	requireLogin, requireConversation, requireBlacklist bool
	privateGroups                                       bool
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "testserver:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("testserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.addr, "addr", "127.0.0.1:0", "address to listen on (port 0 picks a free port)")
	fs.StringVar(&o.db, "db", "testserver.db", "SQLite file path, or a postgres:// URL")
	fs.StringVar(&o.appID, "app-id", "", `LeanCloud app id the hub serves ("" accepts any; signatures need one)`)
	fs.StringVar(&o.appKey, "app-key", "", "LeanCloud app key checked on REST calls (optional)")
	fs.StringVar(&o.masterKey, "master-key", "", "master key; when set, the signatures -require lists are required")
	require := fs.String("require", "login,conversation", "with -master-key: the signatures required, a comma-separated subset of login, conversation, blacklist")
	fs.BoolVar(&o.privateGroups, "private-groups", false, "ConversationVisibility VisibleToMembers: queries find only one's own groups, no joining by id")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.masterKey != "" && o.appID == "" {
		return nil, errors.New("-master-key needs -app-id (signatures include the app id)")
	}
	if o.masterKey != "" {
		for _, r := range strings.Split(*require, ",") {
			switch strings.TrimSpace(r) {
			case "":
			case "login":
				o.requireLogin = true
			case "conversation":
				o.requireConversation = true
			case "blacklist":
				o.requireBlacklist = true
			default:
				return nil, fmt.Errorf("-require: unknown signature %q (login, conversation, blacklist)", r)
			}
		}
	}
	return &o, nil
}

// testHooks returns the hooks the e2e tests provoke.
func testHooks() []any {
	drop := realtime.MessageReceivedFunc(func(_ context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
		if strings.Contains(ev.Message.Data, dropMarker) {
			return &realtime.MessageReceivedResult{Drop: true, AppCode: dropAppCode, Detail: dropDetail}, nil
		}
		return nil, nil
	})
	forbid := realtime.ConversationHook(true, func(_ context.Context, ev *realtime.ConversationEvent) error {
		if ev.Name == forbiddenName {
			return realtime.Reject(forbiddenCode, forbiddenDetail)
		}
		return nil
	}, realtime.ConvStart)
	return []any{drop, forbid}
}

// validTokenPrefix marks the session tokens the test UserResolver accepts:
// "valid-<objectId>" is the user <objectId>.
const validTokenPrefix = "valid-"

// resolveUser is the test UserResolver: what an app's user store would do
// with a session token.
func resolveUser(_ context.Context, token string) (string, error) {
	id, ok := strings.CutPrefix(token, validTokenPrefix)
	if !ok || id == "" {
		return "", realtime.ErrSignatureFailed.WithDetail("unknown session token")
	}
	return id, nil
}

// run starts the server and blocks until ctx is done or a signal arrives,
// then shuts down. It returns nil after a clean shutdown.
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

	visibility := hub.VisibleToAll
	if opts.privateGroups {
		visibility = hub.VisibleToMembers
	}
	st, err := store.Open(ctx, opts.db, &store.Options{Logger: logger})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	h, err := hub.New(st, &hub.Config{
		AppID:                        opts.appID,
		AppKey:                       opts.appKey,
		MasterKey:                    opts.masterKey,
		RequireLoginSignature:        opts.requireLogin,
		RequireConversationSignature: opts.requireConversation,
		RequireBlacklistSignature:    opts.requireBlacklist,
		UserResolver:                 hub.UserResolverFunc(resolveUser),
		ConversationVisibility:       visibility,
		Logger:                       logger,
		Hooks:                        testHooks(),
	})
	if err != nil {
		st.Close()
		return fmt.Errorf("start hub: %w", err)
	}

	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		h.Shutdown(context.Background())
		st.Close()
		return err
	}
	srv := &http.Server{
		Handler:           newRouter(h, h, signer{appID: opts.appID, masterKey: opts.masterKey}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "testserver: listening on http://%s/ (hub at /im)\n", ln.Addr())

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
	logger.Info("shutting down")

	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	err = errors.Join(err, h.Shutdown(shutdownCtx), st.Close())
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// serviceAPI is what the service endpoints need from the hub (the Go API).
type serviceAPI interface {
	CreateConversation(ctx context.Context, c *realtime.Conversation) (*realtime.Conversation, bool, error)
	Send(ctx context.Context, m *realtime.Message, opts *hub.SendOptions) (*realtime.Message, error)
}

func newRouter(im http.Handler, api serviceAPI, s signer) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Mount("/im", im)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	r.Post("/sign", s.serveSign)
	svc := service{api: api}
	r.Post("/service/conversations", svc.serveCreate)
	r.Post("/service/messages", svc.serveSend)
	return r
}

// service creates service conversations and sends to their subscribers
// through the Go API, as an app's back office would.
type service struct{ api serviceAPI }

type serviceCreateRequest struct {
	Name  string          `json:"name"`
	Attrs json.RawMessage `json:"attrs"` // optional JSON object
}

func (s service) serveCreate(w http.ResponseWriter, r *http.Request) {
	var req serviceCreateRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad JSON: " + err.Error()})
		return
	}
	conv, _, err := s.api.CreateConversation(r.Context(), &realtime.Conversation{Name: req.Name, Attrs: req.Attrs, System: true})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": conv.ID, "createdAt": conv.CreatedAt.UTC().Format(time.RFC3339Nano)})
}

type serviceSendRequest struct {
	ConvID string `json:"convId"`
	From   string `json:"from"` // default "system"
	Text   string `json:"text"`
	// To, when present (even empty), addresses the message to these
	// subscribers only; absent, it is a broadcast.
	To *[]string `json:"to"`
}

func (s service) serveSend(w http.ResponseWriter, r *http.Request) {
	var req serviceSendRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad JSON: " + err.Error()})
		return
	}
	if req.From == "" {
		req.From = "system"
	}
	body, err := typedmsg.NewText(req.Text).Encode()
	if err != nil {
		writeError(w, err)
		return
	}
	m := &realtime.Message{ConvID: req.ConvID, From: req.From, Data: body}
	if req.To != nil {
		m.To = append([]string{}, *req.To...)
	}
	sent, err := s.api.Send(r.Context(), m, &hub.SendOptions{System: true})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": sent.ID, "timestamp": sent.Timestamp})
}

// writeError answers a Go API error: 400 with its code and reason.
func writeError(w http.ResponseWriter, err error) {
	e := realtime.AsError(err)
	writeJSON(w, http.StatusBadRequest, map[string]any{"code": e.Code, "error": e.Error()})
}

// signRequest is what the tests' signature factories post to /sign.
type signRequest struct {
	AppID    string   `json:"appId"` // optional; defaults to -app-id
	ClientID string   `json:"clientId"`
	ConvID   string   `json:"convId"`
	Members  []string `json:"members"`
	// "" or "login", "create", "invite", "kick", "conversation-block-clients",
	// "conversation-unblock-clients".
	Action string `json:"action"`
}

type signResponse struct {
	Signature string `json:"signature"`
	Timestamp int64  `json:"timestamp"`
	Nonce     string `json:"nonce"`
}

// signer computes signatures the way an app's own server would.
type signer struct {
	appID     string
	masterKey string
}

func (s signer) serveSign(w http.ResponseWriter, r *http.Request) {
	var req signRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad JSON: " + err.Error()})
		return
	}
	res, err := s.sign(req, time.Now())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s signer) sign(req signRequest, now time.Time) (*signResponse, error) {
	if s.masterKey == "" {
		return nil, errors.New("the server runs without -master-key")
	}
	if req.ClientID == "" {
		return nil, errors.New("clientId is required")
	}
	appID := req.AppID
	if appID == "" {
		appID = s.appID
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	ts := now.UnixMilli()
	var msg string
	switch req.Action {
	case "", "login":
		msg = hub.LoginSignatureMessage(appID, req.ClientID, ts, nonce)
	case "create":
		msg = hub.ConversationSignatureMessage(appID, req.ClientID, "", req.Members, ts, nonce, "create")
	case "invite", "kick":
		if req.ConvID == "" {
			return nil, fmt.Errorf("convId is required for %q", req.Action)
		}
		msg = hub.ConversationSignatureMessage(appID, req.ClientID, req.ConvID, req.Members, ts, nonce, req.Action)
	case "conversation-block-clients", "conversation-unblock-clients":
		if req.ConvID == "" {
			return nil, fmt.Errorf("convId is required for %q", req.Action)
		}
		msg = hub.BlacklistSignatureMessage(appID, req.ClientID, req.ConvID, req.Members, ts, nonce, req.Action)
	default:
		return nil, fmt.Errorf("unknown action %q", req.Action)
	}
	return &signResponse{Signature: hub.Sign(s.masterKey, msg), Timestamp: ts, Nonce: nonce}, nil
}

func newNonce() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

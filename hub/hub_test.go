package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/pgtest"
	"github.com/leanhub/realtime/internal/wire"
	"github.com/leanhub/realtime/store"
)

func TestMain(m *testing.M) {
	// A schema of this run's own: other runs and branches (other
	// migrations) never meet these tables.
	cleanup := pgtest.IsolateProcess("hubtest")
	goleak.VerifyTestMain(m,
		goleak.Cleanup(func(code int) {
			cleanup()
			os.Exit(code)
		}),
		// database/sql and the SQLite driver keep pool goroutines until Close.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreAnyFunction("github.com/uptrace/bun/driver/pgdriver.(*Connector).Connect"),
		// Idle keep-alive connections of http.DefaultClient (the tests'
		// REST calls), not the hub's.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// backends returns the stores every hub test runs on: SQLite always,
// PostgreSQL when REALTIME_TEST_POSTGRES_DSN is set.
func backends(t *testing.T) map[string]func(t *testing.T) realtime.Store {
	b := map[string]func(t *testing.T) realtime.Store{
		"sqlite": func(t *testing.T) realtime.Store {
			st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
	if dsn := os.Getenv("REALTIME_TEST_POSTGRES_DSN"); dsn != "" {
		b["postgres"] = func(t *testing.T) realtime.Store {
			st, err := store.Open(context.Background(), dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	}
	return b
}

// each runs f on every backend. Client ids are made unique per run so the
// shared PostgreSQL database does not mix tests.
func each(t *testing.T, f func(t *testing.T, srv *testServer, id func(string) string), cfg *hub.Config) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, open(t), cfg)
			prefix := fmt.Sprintf("%x-", time.Now().UnixNano()&0xffffffffff)
			f(t, srv, func(s string) string { return prefix + s })
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func text(s string) string {
	b, _ := json.Marshal(map[string]any{"_lctype": -1, "_lctext": s})
	return string(b)
}

func TestRouteAnswersWebsocketURLUnderMount(t *testing.T) {
	st := backends(t)["sqlite"](t)
	srv := newServer(t, st, nil)
	req, _ := http.NewRequest("GET", srv.URL()+"/v1/route?appId=x&secure=true", nil)
	req.Header.Set("Origin", "http://example.com")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Server, Secondary string
		TTL               int
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	want := srv.WebsocketURL()
	if body.Server != want || body.Secondary != want || body.TTL <= 0 {
		t.Fatalf("route = %+v, want server %s", body, want)
	}
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "http://example.com" {
		t.Fatalf("CORS header = %q", got)
	}
	// Behind a TLS proxy the scheme follows X-Forwarded-Proto.
	req, _ = http.NewRequest("GET", srv.URL()+"/v1/route", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "chat.example.com")
	res2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	_ = json.NewDecoder(res2.Body).Decode(&body)
	if body.Server != "wss://chat.example.com/im/ws" {
		t.Fatalf("proxied route = %s", body.Server)
	}
}

func TestSendDeliverAckHistory(t *testing.T) {
	for _, mode := range []string{"binary", "base64"} {
		t.Run(mode, func(t *testing.T) {
			each(t, func(t *testing.T, srv *testServer, id func(string) string) {
				ctx := ctxT(t)
				var opts []lcclient.Option
				if mode == "base64" {
					opts = append(opts, lcclient.Base64())
				}
				tom := srv.Login(t, id("Tom"), opts...)
				jerry := srv.Login(t, id("Jerry"), opts...)
				cid, err := tom.StartConversation(ctx, id("Jerry"))
				if err != nil {
					t.Fatal(err)
				}
				// Jerry is told he was invited.
				if p, err := jerry.NextOf(ctx, wire.CommandType_conv); err != nil || p.GetOp() != wire.OpType_joined || p.GetConvMessage().GetCid() != cid {
					t.Fatalf("joined push = %v, %v", p, err)
				}
				var sent []lcclient.SendResult
				for i := 0; i < 5; i++ {
					r, err := tom.SendText(ctx, cid, "hello "+string(rune('a'+i)))
					if err != nil {
						t.Fatal(err)
					}
					if r.ID == "" || r.Timestamp == 0 {
						t.Fatalf("ack without id/timestamp: %+v", r)
					}
					if i > 0 && r.Timestamp <= sent[i-1].Timestamp {
						t.Fatalf("timestamps not increasing: %d then %d", sent[i-1].Timestamp, r.Timestamp)
					}
					sent = append(sent, r)
				}
				for i := 0; i < 5; i++ {
					m, err := jerry.NextMessage(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if m.ID != sent[i].ID || m.Timestamp != sent[i].Timestamp || m.From != id("Tom") || m.ConvID != cid || m.Data != text("hello "+string(rune('a'+i))) {
						t.Fatalf("message %d = %+v, sent %+v", i, m, sent[i])
					}
				}
				// History back in time, newest page first, ascending order.
				logs, err := tom.History(ctx, &wire.LogsCommand{Cid: proto.String(cid), L: proto.Int32(3)})
				if err != nil {
					t.Fatal(err)
				}
				if len(logs) != 3 || logs[0].GetMsgId() != sent[2].ID || logs[2].GetMsgId() != sent[4].ID {
					t.Fatalf("history page = %v", logs)
				}
				// Next older page from the oldest one seen.
				logs, err = tom.History(ctx, &wire.LogsCommand{Cid: proto.String(cid), L: proto.Int32(3), T: proto.Int64(sent[2].Timestamp), Mid: proto.String(sent[2].ID)})
				if err != nil {
					t.Fatal(err)
				}
				if len(logs) != 2 || logs[0].GetMsgId() != sent[0].ID || logs[1].GetMsgId() != sent[1].ID {
					t.Fatalf("older page = %v", logs)
				}
				// Forward in time.
				logs, err = jerry.History(ctx, &wire.LogsCommand{Cid: proto.String(cid), L: proto.Int32(2), T: proto.Int64(sent[0].Timestamp),
					TIncluded: proto.Bool(true), Direction: wire.QueryDirection_NEW.Enum()})
				if err != nil {
					t.Fatal(err)
				}
				if len(logs) != 2 || logs[0].GetMsgId() != sent[0].ID || logs[1].GetMsgId() != sent[1].ID {
					t.Fatalf("forward page = %v", logs)
				}
			}, nil)
		})
	}
}

func TestRetriedSendIsAckedWithFirstResult(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, err := tom.StartConversation(ctx, id("Jerry"))
		if err != nil {
			t.Fatal(err)
		}
		d := func() *wire.DirectCommand {
			return &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(text("once")), Dt: proto.String("dt-" + id("1"))}
		}
		a, err := tom.SendDirect(ctx, d())
		if err != nil {
			t.Fatal(err)
		}
		b, err := tom.SendDirect(ctx, d())
		if err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Fatalf("retry acked %+v, first %+v", b, a)
		}
		logs, err := tom.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
		if err != nil || len(logs) != 1 {
			t.Fatalf("history after retry: %d messages, %v", len(logs), err)
		}
		if _, err := jerry.NextMessage(ctx); err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if m, err := jerry.NextMessage(short); err == nil {
			t.Fatalf("retry delivered twice: %+v", m)
		}
	}, nil)
}

func TestBadInputGetsCodedErrorsAndSocketSurvives(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		raw, err := lcclient.Dial(ctx, srv.WebsocketURL())
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		// Before session open.
		_, err = raw.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_direct.Enum(),
			DirectMessage: &wire.DirectCommand{Cid: proto.String("x"), Msg: proto.String("hi")}})
		if !errors.Is(err, realtime.ErrSessionRequired) {
			t.Fatalf("send before open: %v", err)
		}
		// Malformed protobuf and bad base64 are dropped, the socket lives.
		if err := raw.SendRaw(ctx, []byte{0xff, 0xff, 0x01}); err != nil {
			t.Fatal(err)
		}
		if err := raw.WriteFrame(ctx, websocket.MessageText, []byte("@@not base64@@")); err != nil {
			t.Fatal(err)
		}
		// Invalid client id.
		if _, err := raw.Open(ctx, "has space", lcclient.OpenOptions{}); !errors.Is(err, realtime.ErrInvalidLogin) {
			t.Fatalf("bad client id: %v", err)
		}
		if _, err := raw.Open(ctx, id("Spike"), lcclient.OpenOptions{}); err != nil {
			t.Fatal(err)
		}
		// Unknown command.
		_, err = raw.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_report.Enum(), PeerId: proto.String(id("Spike"))})
		if !errors.Is(err, realtime.ErrInvalidCommand) {
			t.Fatalf("unknown command: %v", err)
		}
		// A conversation Spike is not in.
		tom := srv.Login(t, id("Tom"))
		cid, err := tom.StartConversation(ctx, id("Jerry"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.SendText(ctx, cid, "let me in"); !errors.Is(err, realtime.ErrInvalidTarget) {
			t.Fatalf("send to foreign conversation: %v", err)
		}
		if _, err := raw.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)}); !errors.Is(err, realtime.ErrConvLogRejected) {
			t.Fatalf("history of foreign conversation: %v", err)
		}
		if _, err := raw.SendText(ctx, "000000000000000000000000", "nobody"); !errors.Is(err, realtime.ErrInvalidTarget) {
			t.Fatalf("send to missing conversation: %v", err)
		}
		// Oversize body.
		big := strings.Repeat("x", 6<<10)
		if _, err := tom.SendText(ctx, cid, big); !errors.Is(err, realtime.ErrMessageTooLarge) {
			t.Fatalf("oversize: %v", err)
		}
		// Mention of a non-member.
		_, err = tom.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(text("@x")), MentionPids: []string{id("Nobody")}})
		if !errors.Is(err, realtime.ErrInvalidMessage) {
			t.Fatalf("mention of non-member: %v", err)
		}
		// The socket still works after all that.
		if _, err := raw.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_echo.Enum()}); err != nil {
			t.Fatalf("echo after errors: %v", err)
		}
		// Nothing was stored by the refused sends.
		logs, err := tom.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
		if err != nil || len(logs) != 0 {
			t.Fatalf("history = %v, %v", logs, err)
		}
	}, nil)
}

func TestOversizeFrameClosesWithTooBig(t *testing.T) {
	st := backends(t)["sqlite"](t)
	srv := newServer(t, st, &hub.Config{Limits: hub.Limits{MaxFrameSize: 1024}})
	ctx := ctxT(t)
	c, err := lcclient.Dial(ctx, srv.WebsocketURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SendRaw(ctx, make([]byte, 4096))
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("socket not closed")
	}
	if got := c.CloseStatus(); got != websocket.StatusMessageTooBig {
		t.Fatalf("close status = %v", got)
	}
}

// Logins run off the read loop, but a client's commands sent right after
// its open (without waiting for the reply, or racing with other clients'
// logins on the same socket, as the SDK does after a reconnect) see the
// session.
func TestCommandsRightAfterOpenSeeTheSession(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		c, err := lcclient.Dial(ctx, srv.WebsocketURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		c.AppID = srv.AppID
		for _, who := range []string{"Tom", "Jerry"} {
			if err := c.Send(ctx, &wire.GenericCommand{Cmd: wire.CommandType_session.Enum(), Op: wire.OpType_open.Enum(),
				AppId: proto.String(srv.AppID), PeerId: proto.String(id(who)), SessionMessage: &wire.SessionCommand{}}); err != nil {
				t.Fatal(err)
			}
		}
		res, err := c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_start.Enum(),
			PeerId: proto.String(id("Jerry")), ConvMessage: &wire.ConvCommand{M: []string{id("Tom")}}})
		if err != nil || res.GetConvMessage().GetCid() == "" {
			t.Fatalf("conv start right after open: %v, %v", res, err)
		}
	}, nil)
}

// The hub works mounted with chi.Mount, with net/http's mux.Handle alone
// (the path keeps its prefix) and behind http.StripPrefix: the router
// answers with the websocket URL under the prefix, REST routes are found,
// and two clients chat through the websocket it names.
func TestMountedEveryWay(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mount func(h http.Handler) http.Handler
	}{
		{"chi.Mount", func(h http.Handler) http.Handler { r := chi.NewRouter(); r.Mount("/im", h); return r }},
		{"net/http Handle", func(h http.Handler) http.Handler { m := http.NewServeMux(); m.Handle("/im/", h); return m }},
		{"http.StripPrefix", func(h http.Handler) http.Handler {
			m := http.NewServeMux()
			m.Handle("/im/", http.StripPrefix("/im", h))
			return m
		}},
		{"nested prefix with v1 in it", func(h http.Handler) http.Handler {
			m := http.NewServeMux()
			m.Handle("/api/v1/im/", h)
			return m
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			st := backends(t)["sqlite"](t)
			h, err := hub.New(st, &hub.Config{MasterKey: "mk"})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(tc.mount(h))
			t.Cleanup(func() { h.Shutdown(context.Background()); srv.Close() })
			prefix := "/im"
			if strings.HasPrefix(tc.name, "nested") {
				prefix = "/api/v1/im"
			}
			res, err := http.Get(srv.URL + prefix + "/v1/route?appId=x")
			if err != nil {
				t.Fatal(err)
			}
			var route struct{ Server string }
			json.NewDecoder(res.Body).Decode(&route)
			res.Body.Close()
			if want := "ws" + strings.TrimPrefix(srv.URL, "http") + prefix + "/ws"; route.Server != want {
				t.Fatalf("route %q, want %q", route.Server, want)
			}
			res, err = http.Get(srv.URL + prefix + "/1.1/rtm/notifications?client_id=x")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("REST route under %s: %d", tc.name, res.StatusCode)
			}
			// The REST API v2, nested routes included.
			for _, p := range []string{"/1.2/rtm/all-conversations", "/1.2/rtm/clients/x/unread-count"} {
				req, _ := http.NewRequest("GET", srv.URL+prefix+p, nil)
				req.Header.Set("X-LC-Id", "x")
				req.Header.Set("X-LC-Key", "mk,master")
				res, err = http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					t.Fatalf("REST API v2 %s under %s: %d", p, tc.name, res.StatusCode)
				}
			}
			login := func(id string) *lcclient.Client {
				c, err := lcclient.Dial(ctx, route.Server)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(c.Close)
				if _, err := c.Open(ctx, id, lcclient.OpenOptions{}); err != nil {
					t.Fatal(err)
				}
				return c
			}
			tom, jerry := login("Tom"), login("Jerry")
			cid, err := tom.StartConversation(ctx, "Jerry")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tom.SendText(ctx, cid, "hi"); err != nil {
				t.Fatal(err)
			}
			if m, err := jerry.NextMessage(ctx); err != nil || m.Data != text("hi") {
				t.Fatalf("jerry got %v, %v", m, err)
			}
		})
	}
}

// Replies to a socket's queries come in the order the queries were sent:
// the SDK looks a conversation up once per message of it that arrives
// before the conversation is cached, and relies on the answers' order.
func TestQueryRepliesKeepTheirOrder(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		var cids []string
		for i := 0; i < 5; i++ {
			cid, err := tom.StartConversationWith(ctx, &wire.ConvCommand{M: []string{id("Tom"), id(fmt.Sprint("peer", i))}})
			if err != nil {
				t.Fatal(err)
			}
			cids = append(cids, cid)
		}
		const n = 30
		for k := 0; k < n; k++ {
			where := fmt.Sprintf(`{"objectId":%q}`, cids[k%len(cids)])
			if err := tom.Send(ctx, &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_query.Enum(),
				I: proto.Int32(int32(1000 + k)), ConvMessage: &wire.ConvCommand{Where: &wire.JsonObjectMessage{Data: proto.String(where)}}}); err != nil {
				t.Fatal(err)
			}
		}
		for k := 0; k < n; k++ {
			res, err := tom.NextOf(ctx, wire.CommandType_conv)
			if err != nil {
				t.Fatal(err)
			}
			if res.I == nil {
				k-- // a push (members joined), not a reply
				continue
			}
			if res.GetI() != int32(1000+k) || !strings.Contains(res.GetConvMessage().GetResults().GetData(), cids[k%len(cids)]) {
				t.Fatalf("reply %d: i=%d %s", k, res.GetI(), res.GetConvMessage().GetResults().GetData())
			}
		}
	}, nil)
}

package hub_test

// Abuse resistance: one ordinary client must not take the server down or
// keep access it should have lost.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

// Every command family that writes or scans has a per-client limit,
// answered with 4116; one client's flood leaves the others unaffected,
// and a second socket of the same client does not double its rate.
func TestEveryCommandFamilyIsRateLimited(t *testing.T) {
	tight := hub.Rate{PerSecond: 0.001, Burst: 3}
	cfg := &hub.Config{Limits: hub.Limits{ConversationRate: tight, PatchRate: tight, QueryRate: tight, SendRate: 0.001, SendBurst: 3}}
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		honest := srv.Login(t, id("Honest"))
		var cid string
		families := []struct {
			name string
			do   func(c *lcclient.Client) error
		}{
			{"conversation creation", func(c *lcclient.Client) error {
				_, err := c.StartConversationWith(ctx, &wire.ConvCommand{M: []string{c.ClientID, id("x")}})
				return err
			}},
			{"conversation update", func(c *lcclient.Client) error {
				_, err := convRequest(ctx, c, wire.OpType_update, &wire.ConvCommand{Cid: proto.String(cid),
					Attr: &wire.JsonObjectMessage{Data: proto.String(`{"name":"n"}`)}})
				return err
			}},
			{"query", func(c *lcclient.Client) error {
				_, err := convRequest(ctx, c, wire.OpType_query, &wire.ConvCommand{})
				return err
			}},
			{"history", func(c *lcclient.Client) error {
				_, err := c.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
				return err
			}},
			{"send", func(c *lcclient.Client) error {
				_, err := c.SendText(ctx, cid, "spam")
				return err
			}},
		}
		for k, f := range families {
			// A flooder per family (families sharing a bucket, e.g.
			// creation and update, would drain each other's), on two
			// sockets.
			fid := id(fmt.Sprint("Flooder", k))
			flooder, second := srv.Login(t, fid), srv.Login(t, fid)
			conv, _, err := srv.Hub.CreateConversation(ctx, &realtime.Conversation{Creator: id("Honest"), Members: []string{fid}})
			if err != nil {
				t.Fatal(err)
			}
			cid = conv.ID
			limited := 0
			for i := 0; i < 8; i++ {
				c := flooder
				if i%2 == 1 {
					c = second
				}
				err := f.do(c)
				if errors.Is(err, realtime.ErrRateLimited) {
					limited++
				} else if err != nil {
					t.Fatalf("%s %d: %v", f.name, i, err)
				}
			}
			if limited != 5 {
				t.Errorf("%s: %d of 8 refused with 4116 across two sockets, want 5 (burst 3 per client)", f.name, limited)
			}
			// The honest client is not affected by the flooder's limit.
			if err := f.do(honest); err != nil {
				t.Errorf("%s by another client during the flood: %v", f.name, err)
			}
		}
	}, cfg)
}

// Logins and sockets are limited per address (as seen through a trusted
// proxy here: loopback itself is not limited).
func TestPerAddressLimits(t *testing.T) {
	st := backends(t)["sqlite"](t)
	srv := newServer(t, st, &hub.Config{TrustForwardedFor: true,
		Limits: hub.Limits{LoginRate: hub.Rate{PerSecond: 0.001, Burst: 2}, MaxSocketsPerAddress: 3}})
	ctx := ctxT(t)
	dial := func(addr string) (*lcclient.Client, error) {
		return lcclient.Dial(ctx, srv.WebsocketURL(), lcclient.Header(http.Header{"X-Forwarded-For": {addr}}))
	}
	var socks []*lcclient.Client
	for i := 0; i < 3; i++ {
		c, err := dial("203.0.113.7")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		c.AppID = srv.AppID
		socks = append(socks, c)
	}
	// A fourth socket from the address is turned away.
	c4, err := dial("203.0.113.7")
	if err == nil {
		if _, err = c4.Open(ctx, "late", lcclient.OpenOptions{}); err == nil {
			t.Fatal("a fourth socket from one address was served")
		}
		c4.Close()
	}
	// Two logins, then 4116 for the third.
	for i, c := range socks {
		_, err := c.Open(ctx, fmt.Sprint("user", i), lcclient.OpenOptions{})
		if i < 2 && err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		if i == 2 && !errors.Is(err, realtime.ErrRateLimited) {
			t.Fatalf("third login from the address: %v, want 4116", err)
		}
	}
	// Another address is not affected.
	other, err := dial("198.51.100.1")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.AppID = srv.AppID
	if _, err := other.Open(ctx, "other", lcclient.OpenOptions{}); err != nil {
		t.Fatalf("login from another address: %v", err)
	}
	// The socket count falls when sockets close.
	socks[0].Close()
	<-socks[0].Done()
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := dial("203.0.113.7")
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket accepted after one closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// One client id cannot hold more than MaxSessionsPerClient sessions.
func TestSessionsPerClientAreBounded(t *testing.T) {
	st := backends(t)["sqlite"](t)
	srv := newServer(t, st, &hub.Config{Limits: hub.Limits{MaxSessionsPerClient: 2}})
	ctx := ctxT(t)
	srv.Login(t, "Tom")
	srv.Login(t, "Tom")
	c, err := lcclient.Dial(ctx, srv.WebsocketURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.AppID = srv.AppID
	_, err = c.Open(ctx, "Tom", lcclient.OpenOptions{})
	wantCode(t, err, realtime.CodeInvalidLogin, "a third session of one client")
}

// A socket whose sessions all logged out is closed after LoginTimeout like
// one that never logged in.
func TestLoggedOutSocketIsClosedAfterLoginTimeout(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		c := srv.Login(t, id("Tom"))
		if err := c.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.Done():
		case <-ctx.Done():
			t.Fatal("a logged-out idle socket was kept open")
		}
		if got := c.CloseStatus(); got != websocket.StatusCode(realtime.CodeLoginTimeout) {
			t.Fatalf("closed with %v, want 4108", got)
		}
	}, &hub.Config{LoginTimeout: 300 * time.Millisecond})
}

// An edit meets the limits of a send: mentions, size, typed bodies.
func TestEditsMeetTheLimitsOfSends(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		m, err := tom.SendText(ctx, cid, "hi")
		if err != nil {
			t.Fatal(err)
		}
		edit := func(it *wire.PatchItem) error {
			it.Cid, it.Mid, it.Timestamp = proto.String(cid), proto.String(m.ID), proto.Int64(m.Timestamp)
			_, err := tom.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_patch.Enum(), Op: wire.OpType_modify.Enum(),
				PeerId: proto.String(tom.ClientID), PatchMessage: &wire.PatchCommand{Patches: []*wire.PatchItem{it}}})
			return err
		}
		many := make([]string, 10_000)
		for i := range many {
			many[i] = id(fmt.Sprint("u", i))
		}
		wantCode(t, edit(&wire.PatchItem{Data: proto.String(text("@all")), MentionPids: many}), realtime.CodeInvalidMessage, "an edit with 10,000 mentions")
		wantCode(t, edit(&wire.PatchItem{Data: proto.String(strings.Repeat("x", 6000))}), realtime.CodeMessageTooLarge, "an oversize edit")
		wantCode(t, edit(&wire.PatchItem{Data: proto.String(text("hi")), MentionPids: []string{id("Stranger")}}), realtime.CodeInvalidMessage, "an edit mentioning a non-member")
		logs, err := tom.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)})
		if err != nil || len(logs) != 1 || logs[0].GetData() != text("hi") || len(logs[0].GetMentionPids()) != 0 {
			t.Fatalf("history after refused edits: %v, %v", logs, err)
		}
	}, &hub.Config{Limits: hub.Limits{MaxFrameSize: 1 << 20}})
}

// Frames that do not decode are answered with a coded error, and a socket
// that keeps sending them is closed.
func TestUndecodableFramesAreAnsweredThenClosed(t *testing.T) {
	st := backends(t)["sqlite"](t)
	srv := newServer(t, st, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := srv.Login(t, "Tom")
	if err := c.SendRaw(ctx, []byte{0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	p, err := c.NextOf(ctx, wire.CommandType_error)
	if err != nil || p.GetErrorMessage().GetCode() != realtime.CodeInvalidCommand {
		t.Fatalf("answer to an undecodable frame: %v, %v", p, err)
	}
	for i := 0; i < 20; i++ {
		if c.SendRaw(ctx, []byte{0xff, 0xff, 0xff}) != nil {
			break
		}
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("a socket sending garbage was kept open")
	}
}

// Logging out, a tag conflict and Hub.Logout void the session tokens they
// cover, also for a hub started later on the same store; with login
// signatures a voided token does not stand in for the signature.
func TestSessionTokensAreRevoked(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprint("signatures ", signed), func(t *testing.T) {
			cfg := &hub.Config{}
			if signed {
				cfg = &hub.Config{AppID: "app", MasterKey: testMasterKey, RequireLoginSignature: true}
			}
			for name, open := range backends(t) {
				t.Run(name, func(t *testing.T) {
					st := open(t)
					srv := newServer(t, st, cfg)
					ctx := ctxT(t)
					prefix := fmt.Sprintf("%x-", time.Now().UnixNano()&0xffffffff)
					login := func(srv *testServer, client string, o lcclient.OpenOptions) (*lcclient.Client, string, error) {
						c, err := lcclient.Dial(ctx, srv.WebsocketURL())
						if err != nil {
							t.Fatal(err)
						}
						t.Cleanup(c.Close)
						c.AppID = srv.AppID
						if signed && !o.Reconnect {
							ts, nonce := time.Now().UnixMilli(), fmt.Sprint(time.Now().UnixNano())
							o.Signature, o.Timestamp, o.Nonce = hub.Sign(testMasterKey, hub.LoginSignatureMessage("app", client, ts, nonce)), ts, nonce
						}
						tok, err := c.Open(ctx, client, o)
						return c, tok, err
					}
					reconnect := func(srv *testServer, client, tok string, dev string) error {
						_, _, err := login(srv, client, lcclient.OpenOptions{Reconnect: true, SessionToken: tok, DeviceID: dev})
						return err
					}
					// Logout voids that device's token; another device's stays.
					tom := prefix + "Tom"
					c1, tok1, err := login(srv, tom, lcclient.OpenOptions{DeviceID: "phone"})
					if err != nil {
						t.Fatal(err)
					}
					_, tok2, err := login(srv, tom, lcclient.OpenOptions{DeviceID: "laptop"})
					if err != nil {
						t.Fatal(err)
					}
					if err := c1.Logout(ctx); err != nil {
						t.Fatal(err)
					}
					wantCode(t, reconnect(srv, tom, tok1, "phone"), realtime.CodeSessionTokenExpired, "the logged-out device's token")
					if err := reconnect(srv, tom, tok2, "laptop"); err != nil {
						t.Fatalf("another device's token after one device logged out: %v", err)
					}
					// A tag conflict voids the kicked device's token.
					jerry := prefix + "Jerry"
					_, old, err := login(srv, jerry, lcclient.OpenOptions{Tag: "Mobile", DeviceID: "old"})
					if err != nil {
						t.Fatal(err)
					}
					if _, _, err := login(srv, jerry, lcclient.OpenOptions{Tag: "Mobile", DeviceID: "new"}); err != nil {
						t.Fatal(err)
					}
					wantCode(t, reconnect(srv, jerry, old, "old"), realtime.CodeSessionTokenExpired, "the kicked device's token")
					// Hub.Logout ends every session (4115) and voids every token.
					kate := prefix + "Kate"
					kc, ktok, err := login(srv, kate, lcclient.OpenOptions{DeviceID: "k1"})
					if err != nil {
						t.Fatal(err)
					}
					if err := srv.Hub.Logout(ctx, kate); err != nil {
						t.Fatal(err)
					}
					p, err := kc.NextOf(ctx, wire.CommandType_session)
					if err != nil || p.GetOp() != wire.OpType_closed || p.GetSessionMessage().GetCode() != realtime.CodeKickedByApp {
						t.Fatalf("Hub.Logout push: %v, %v", p, err)
					}
					wantCode(t, reconnect(srv, kate, ktok, "k1"), realtime.CodeSessionTokenExpired, "a token after Hub.Logout")
					// A hub started later on the same store knows.
					later := newServer(t, st, cfg)
					wantCode(t, reconnect(later, tom, tok1, "phone"), realtime.CodeSessionTokenExpired, "a revoked token after a restart")
					if err := reconnect(later, tom, tok2, "laptop"); err != nil {
						t.Fatalf("a valid token after a restart: %v", err)
					}
				})
			}
		})
	}
}

package hub_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

// dialApp dials a socket that sends appID in its commands.
func dialApp(t *testing.T, srv *testServer, appID string, opts ...lcclient.Option) *lcclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := lcclient.Dial(ctx, srv.WebsocketURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	c.AppID = appID
	return c
}

func wantCode(t *testing.T, err error, code int, what string) {
	t.Helper()
	if got, _ := codeOf(err); got != code {
		t.Fatalf("%s: %v; want %d", what, err, code)
	}
}

func TestOtherAppIDRefusedWith4100(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		c := dialApp(t, srv, "other-app")
		_, err := c.Open(ctx, id("Tom"), lcclient.OpenOptions{})
		wantCode(t, err, realtime.CodeAppNotAvailable, "open for another app")
		if srv.Hub.Online(id("Tom")) {
			t.Fatal("refused client is online")
		}
		// The same socket may still open for the right app.
		c.AppID = "app"
		if _, err := c.Open(ctx, id("Tom"), lcclient.OpenOptions{}); err != nil {
			t.Fatalf("open for the hub's app: %v", err)
		}
	}, &hub.Config{AppID: "app"})
}

func TestAuthenticatorRefusesAndSeesUpgradeRequest(t *testing.T) {
	var calls atomic.Int32
	auth := hub.AuthenticatorFunc(func(ctx context.Context, req *hub.LoginRequest) error {
		calls.Add(1)
		switch {
		case strings.HasSuffix(req.ClientID, "Banned"):
			return realtime.ErrInvalidLogin.WithDetail("banned by the app")
		case strings.HasSuffix(req.ClientID, "Broken"):
			return errors.New("user database down")
		case req.Reconnect && req.SessionTokenValid:
			return nil // the hub's token proves an earlier login; bans above still apply
		}
		// The app's own cookie/header names who may log in as what.
		if req.HTTP == nil || req.HTTP.Header.Get("X-App-User") != req.ClientID {
			return realtime.ErrSignatureFailed.WithDetail("not your client id")
		}
		if req.AppID != "app" || req.Tag != "Mobile" || req.DeviceID != "dev-1" {
			return fmt.Errorf("unexpected request %+v", req)
		}
		return nil
	})
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		opts := lcclient.OpenOptions{Tag: "Mobile", DeviceID: "dev-1"}
		as := func(user string) *lcclient.Client {
			return dialApp(t, srv, "app", lcclient.Header(http.Header{"X-App-User": {user}}))
		}
		_, err := as(id("Banned")).Open(ctx, id("Banned"), opts)
		var e *realtime.Error
		if !errors.As(err, &e) || e.Code != realtime.CodeInvalidLogin || e.Detail != "banned by the app" {
			t.Fatalf("custom refusal: %v; want 4103 with the app's detail", err)
		}
		_, err = as(id("Broken")).Open(ctx, id("Broken"), opts)
		wantCode(t, err, realtime.CodeSignatureFailed, "plain error")
		if errors.As(err, &e) && strings.Contains(e.Detail, "database") {
			t.Fatalf("internal error text leaked to the client: %q", e.Detail)
		}
		_, err = as(id("Jerry")).Open(ctx, id("Tom"), opts)
		wantCode(t, err, realtime.CodeSignatureFailed, "header names another user")
		_, err = dialApp(t, srv, "app").Open(ctx, id("Tom"), opts)
		wantCode(t, err, realtime.CodeSignatureFailed, "no header")

		tom := as(id("Tom"))
		st, err := tom.Open(ctx, id("Tom"), opts)
		if err != nil {
			t.Fatalf("allowed open: %v", err)
		}
		if !srv.Hub.Online(id("Tom")) {
			t.Fatal("Tom not online")
		}
		// A reconnect with a valid session token still asks the
		// Authenticator (so bans take effect), telling it the token is good.
		tom.Close()
		before := calls.Load()
		again := dialApp(t, srv, "app") // no header: the token is the proof
		if _, err := again.Open(ctx, id("Tom"), lcclient.OpenOptions{Reconnect: true, SessionToken: st}); err != nil {
			t.Fatalf("reconnect with token: %v", err)
		}
		if n := calls.Load() - before; n != 1 {
			t.Fatalf("Authenticator called %d times for a token reconnect, want 1", n)
		}
	}, &hub.Config{AppID: "app", Authenticator: auth})
}

const testMasterKey = "master-key-for-tests"

func TestLoginSignatures(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := id("Tom")
		// The documented format, built by hand: appid:clientid::timestamp:nonce.
		sign := func(client string, ts int64, nonce string) string {
			return hub.Sign(testMasterKey, fmt.Sprintf("app:%s::%d:%s", client, ts, nonce))
		}
		if got, want := hub.LoginSignatureMessage("app", tom, 12, "n"), "app:"+tom+"::12:n"; got != want {
			t.Fatalf("LoginSignatureMessage = %q, want %q", got, want)
		}
		open := func(client string, o lcclient.OpenOptions) (string, error) {
			return dialApp(t, srv, "app").Open(ctx, client, o)
		}
		now := time.Now()
		sec, ms := now.Unix(), now.UnixMilli()

		_, err := open(tom, lcclient.OpenOptions{})
		wantCode(t, err, realtime.CodeSignatureFailed, "no signature")

		nonce := id("n1")
		if _, err := open(tom, lcclient.OpenOptions{Signature: sign(tom, sec, nonce), Timestamp: sec, Nonce: nonce}); err != nil {
			t.Fatalf("valid signature, seconds: %v", err)
		}
		// Replaying the same signed open fails.
		_, err = open(tom, lcclient.OpenOptions{Signature: sign(tom, sec, nonce), Timestamp: sec, Nonce: nonce})
		wantCode(t, err, realtime.CodeSignatureFailed, "replayed nonce")

		nonce = id("n2")
		st, err := open(tom, lcclient.OpenOptions{Signature: sign(tom, ms, nonce), Timestamp: ms, Nonce: nonce})
		if err != nil {
			t.Fatalf("valid signature, milliseconds: %v", err)
		}

		nonce = id("n3")
		_, err = open(tom, lcclient.OpenOptions{Signature: sign(tom, sec, nonce+"x"), Timestamp: sec, Nonce: nonce})
		wantCode(t, err, realtime.CodeSignatureFailed, "signature over another nonce")
		_, err = open(tom, lcclient.OpenOptions{Signature: hub.Sign("wrong key", fmt.Sprintf("app:%s::%d:%s", tom, sec, nonce)), Timestamp: sec, Nonce: nonce})
		wantCode(t, err, realtime.CodeSignatureFailed, "signed with another key")
		_, err = open(id("Jerry"), lcclient.OpenOptions{Signature: sign(tom, sec, nonce), Timestamp: sec, Nonce: nonce})
		wantCode(t, err, realtime.CodeSignatureFailed, "Tom's signature used by Jerry")

		stale := now.Add(-2 * time.Hour).Unix()
		nonce = id("n4")
		_, err = open(tom, lcclient.OpenOptions{Signature: sign(tom, stale, nonce), Timestamp: stale, Nonce: nonce})
		wantCode(t, err, realtime.CodeSignatureFailed, "stale timestamp (seconds)")
		staleMs := now.Add(-2 * time.Hour).UnixMilli()
		_, err = open(tom, lcclient.OpenOptions{Signature: sign(tom, staleMs, nonce), Timestamp: staleMs, Nonce: nonce})
		wantCode(t, err, realtime.CodeSignatureFailed, "stale timestamp (milliseconds)")
		future := now.Add(2 * time.Hour).Unix()
		_, err = open(tom, lcclient.OpenOptions{Signature: sign(tom, future, nonce), Timestamp: future, Nonce: nonce})
		wantCode(t, err, realtime.CodeSignatureFailed, "timestamp far in the future")

		// A reconnect with a valid session token needs no signature.
		if _, err := open(tom, lcclient.OpenOptions{Reconnect: true, SessionToken: st}); err != nil {
			t.Fatalf("reconnect with session token: %v", err)
		}
		// A forged token does not skip it.
		_, err = open(tom, lcclient.OpenOptions{Reconnect: true, SessionToken: st + "x"})
		if err == nil {
			t.Fatal("reconnect with a forged token accepted")
		}
	}, &hub.Config{AppID: "app", MasterKey: testMasterKey, RequireLoginSignature: true})
}

func TestConversationSignatures(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := dialApp(t, srv, "app")
		if _, err := tom.Open(ctx, id("Tom"), lcclient.OpenOptions{}); err != nil {
			t.Fatal(err)
		}
		ts := time.Now().UnixMilli()
		n := 0
		nonce := func() string { n++; return id(fmt.Sprintf("nonce%d", n)) }
		// create: appid:clientid:sorted_member_ids:timestamp:nonce, with the
		// creator among the members (built by hand).
		createSig := func(members string, nc string) string {
			return hub.Sign(testMasterKey, fmt.Sprintf("app:%s:%s:%d:%s", id("Tom"), members, ts, nc))
		}
		sorted := id("Jerry") + ":" + id("Tom") // "…-Jerry" < "…-Tom"
		start := func(sig string, nc string) (string, error) {
			return tom.StartConversationWith(ctx, &wire.ConvCommand{M: []string{id("Jerry")}, S: proto.String(sig), T: proto.Int64(ts), N: proto.String(nc)})
		}
		nc := nonce()
		_, err := start(createSig(id("Jerry"), nc), nc)
		wantCode(t, err, realtime.CodeConvSignatureFailed, "create signed without the creator")
		nc = nonce()
		_, err = start(createSig(id("Tom")+":"+id("Jerry"), nc), nc)
		wantCode(t, err, realtime.CodeConvSignatureFailed, "create signed with unsorted members")
		_, err = tom.StartConversationWith(ctx, &wire.ConvCommand{M: []string{id("Jerry")}})
		wantCode(t, err, realtime.CodeConvSignatureFailed, "create without signature")
		nc = nonce()
		cid, err := start(createSig(sorted, nc), nc)
		if err != nil {
			t.Fatalf("create with a valid signature: %v", err)
		}
		if want := "app:" + id("Tom") + ":" + sorted + fmt.Sprintf(":%d:x", ts); hub.ConversationSignatureMessage("app", id("Tom"), "", []string{id("Tom"), id("Jerry")}, ts, "x", "create") != want {
			t.Fatalf("ConversationSignatureMessage(create) does not match the documented format %q", want)
		}

		// invite/kick: appid:clientid:convid:sorted_member_ids:timestamp:nonce:action.
		members := func(op wire.OpType, sig, nc string, ids ...string) error {
			_, err := convRequest(ctx, tom, op, &wire.ConvCommand{Cid: proto.String(cid), M: ids, S: proto.String(sig), T: proto.Int64(ts), N: proto.String(nc)})
			return err
		}
		pair := []string{id("Spike"), id("Kate")}
		pairSorted := id("Kate") + ":" + id("Spike")
		memberSig := func(list, nc, action string) string {
			return hub.Sign(testMasterKey, fmt.Sprintf("app:%s:%s:%s:%d:%s:%s", id("Tom"), cid, list, ts, nc, action))
		}
		nc = nonce()
		wantCode(t, members(wire.OpType_add, memberSig(pairSorted, nc, "kick"), nc, pair...), realtime.CodeConvSignatureFailed, "invite signed as kick")
		nc = nonce()
		wantCode(t, members(wire.OpType_add, memberSig(id("Kate"), nc, "invite"), nc, pair...), realtime.CodeConvSignatureFailed, "invite signed for fewer members")
		nc = nonce()
		wantCode(t, members(wire.OpType_add, "deadbeef", nc, pair...), realtime.CodeConvSignatureFailed, "invite with garbage signature")
		nc = nonce()
		if err := members(wire.OpType_add, memberSig(pairSorted, nc, "invite"), nc, pair...); err != nil {
			t.Fatalf("invite with a valid signature: %v", err)
		}
		// Replayed.
		wantCode(t, members(wire.OpType_add, memberSig(pairSorted, nc, "invite"), nc, pair...), realtime.CodeConvSignatureFailed, "replayed invite nonce")
		if want := hub.ConversationSignatureMessage("app", id("Tom"), cid, pair, ts, "x", "invite"); want != fmt.Sprintf("app:%s:%s:%s:%d:x:invite", id("Tom"), cid, pairSorted, ts) {
			t.Fatalf("ConversationSignatureMessage(invite) = %q", want)
		}
		nc = nonce()
		wantCode(t, members(wire.OpType_remove, memberSig(id("Kate"), nc, "invite"), nc, id("Kate")), realtime.CodeConvSignatureFailed, "kick signed as invite")
		nc = nonce()
		if err := members(wire.OpType_remove, memberSig(id("Kate"), nc, "kick"), nc, id("Kate")); err != nil {
			t.Fatalf("kick with a valid signature: %v", err)
		}
		res, err := convRequest(ctx, tom, wire.OpType_members, &wire.ConvCommand{Cid: proto.String(cid)})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(res.GetConvMessage().GetM(), ","); got != strings.Join([]string{id("Jerry"), id("Spike"), id("Tom")}, ",") {
			t.Fatalf("members = %s", got)
		}
	}, &hub.Config{AppID: "app", MasterKey: testMasterKey, RequireConversationSignature: true})
}

func TestSignedJoinAndQuitSignTheClientItself(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := dialApp(t, srv, "app")
		ts := time.Now().UnixMilli()
		sig := func(msg string) string { return hub.Sign(testMasterKey, msg) }
		loginNonce := id("login")
		if _, err := tom.Open(ctx, id("Tom"), lcclient.OpenOptions{
			Signature: sig(hub.LoginSignatureMessage("app", id("Tom"), ts, loginNonce)), Timestamp: ts, Nonce: loginNonce}); err != nil {
			t.Fatal(err)
		}
		// A conversation Tom is not in.
		conv, _, err := srv.Hub.CreateConversation(ctx, &realtime.Conversation{Creator: id("Jerry"), Members: []string{id("Jerry")}})
		if err != nil {
			t.Fatal(err)
		}
		for i, action := range []string{"invite", "kick"} {
			op := wire.OpType_add
			if action == "kick" {
				op = wire.OpType_remove
			}
			nonce := id(fmt.Sprint("n", i))
			// What the SDK's conversationSignatureFactory is given for
			// join()/quit(): (convId, clientId, [clientId], action).
			msg := hub.ConversationSignatureMessage("app", id("Tom"), conv.ID, []string{id("Tom")}, ts, nonce, action)
			if _, err := convRequest(ctx, tom, op, &wire.ConvCommand{Cid: proto.String(conv.ID), M: []string{id("Tom")},
				S: proto.String(sig(msg)), T: proto.Int64(ts), N: proto.String(nonce)}); err != nil {
				t.Fatalf("signed self-%s: %v", action, err)
			}
		}
	}, &hub.Config{AppID: "app", MasterKey: testMasterKey, RequireLoginSignature: true, RequireConversationSignature: true})
}

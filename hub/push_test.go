package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

const pushTemplate = `{"alert":"New message from ${fromClientId} in ${convId}","badge":"Increment"}`

// pushRecorder is a fake Pusher keeping every notification it is given.
type pushRecorder struct {
	mu sync.Mutex
	ns []*realtime.Notification
}

func (r *pushRecorder) pusher() realtime.Pusher {
	return realtime.PusherFunc(func(ctx context.Context, n *realtime.Notification) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		c := *n
		r.ns = append(r.ns, &c)
		return nil
	})
}

// to returns the notifications pushed to a device token so far. Tokens are
// unique per run, so notifications of other runs sharing a PostgreSQL
// queue are left out.
func (r *pushRecorder) to(token string) []*realtime.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*realtime.Notification
	for _, n := range r.ns {
		if n.Device.Token == token {
			out = append(out, n)
		}
	}
	return out
}

// waitMsg polls until the push of message msgID to token arrives.
func (r *pushRecorder) waitMsg(t *testing.T, token, msgID string) *realtime.Notification {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range r.to(token) {
			if n.MsgID == msgID {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no push of message %s to device %s; got %d other pushes", msgID, token, len(r.to(token)))
	return nil
}

// none checks, after the queue had time to deliver, that message msgID was
// not pushed to token.
func (r *pushRecorder) none(t *testing.T, token, msgID, what string) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	for _, n := range r.to(token) {
		if n.MsgID == msgID {
			t.Fatalf("%s: unexpected push %s", what, n.Payload)
		}
	}
}

func jsonEq(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("payload %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("payload = %s, want %s", ja, jb)
	}
}

// eachStore is each with the store at hand too.
func eachStore(t *testing.T, cfg *hub.Config, f func(t *testing.T, srv *testServer, st realtime.Store, id func(string) string)) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			srv := newServer(t, st, cfg)
			prefix := fmt.Sprintf("%x-", time.Now().UnixNano()&0xffffffffff)
			f(t, srv, st, func(s string) string { return prefix + s })
		})
	}
}

func TestPushTemplateToOfflineDevicesWithIncrementingBadge(t *testing.T) {
	rec := &pushRecorder{}
	eachStore(t, &hub.Config{Pusher: rec.pusher(), PushTemplate: pushTemplate}, func(t *testing.T, srv *testServer, st realtime.Store, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		kateTok, jerryTok := id("kate.token"), id("jerry.token")
		for _, d := range []realtime.Device{
			{ClientID: id("Kate"), Platform: realtime.PlatformIOS, Token: kateTok},
			{ClientID: id("Jerry"), Platform: realtime.PlatformIOS, Token: jerryTok},
		} {
			if err := srv.Hub.RegisterDevice(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		cid, _ := tom.StartConversation(ctx, id("Jerry"), id("Kate"))
		first, err := tom.SendText(ctx, cid, "one")
		if err != nil {
			t.Fatal(err)
		}
		n := rec.waitMsg(t, kateTok, first.ID)
		jsonEq(t, n.Payload, fmt.Sprintf(`{"alert":"New message from %s in %s","badge":1}`, id("Tom"), cid))
		if n.ConvID != cid || n.From != id("Tom") || n.Device.ClientID != id("Kate") || n.Device.Platform != realtime.PlatformIOS {
			t.Fatalf("notification = %+v", n)
		}
		second, err := tom.SendText(ctx, cid, "two")
		if err != nil {
			t.Fatal(err)
		}
		n = rec.waitMsg(t, kateTok, second.ID)
		jsonEq(t, n.Payload, fmt.Sprintf(`{"alert":"New message from %s in %s","badge":2}`, id("Tom"), cid))
		time.Sleep(300 * time.Millisecond)
		if got := rec.to(kateTok); len(got) != 2 {
			t.Fatalf("Kate's device got %d pushes for 2 messages", len(got))
		}
		if got := rec.to(jerryTok); len(got) != 0 {
			t.Fatalf("online Jerry's device got pushes: %s", got[0].Payload)
		}
		if m, err := jerry.NextMessage(ctx); err != nil || m.ID != first.ID {
			t.Fatalf("Jerry's delivery: %v, %v", m, err)
		}
	})
}

func TestPushContentPriorityAndExclusions(t *testing.T) {
	rec := &pushRecorder{}
	offline := realtime.ReceiversOfflineFunc(func(ctx context.Context, ev *realtime.ReceiversOfflineEvent) (*realtime.ReceiversOfflineResult, error) {
		switch {
		case strings.Contains(ev.Message.Data, "use hook"):
			return &realtime.ReceiversOfflineResult{PushMessage: json.RawMessage(`{"alert":"from the hook"}`)}, nil
		case strings.Contains(ev.Message.Data, "skip push"):
			return &realtime.ReceiversOfflineResult{Skip: true}, nil
		}
		return nil, nil
	})
	eachStore(t, &hub.Config{Pusher: rec.pusher(), PushTemplate: pushTemplate, Hooks: []any{offline}}, func(t *testing.T, srv *testServer, st realtime.Store, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		kateTok := id("kate.token")
		if err := srv.Hub.RegisterDevice(ctx, realtime.Device{ClientID: id("Kate"), Platform: realtime.PlatformIOS, Token: kateTok}); err != nil {
			t.Fatal(err)
		}
		cid, _ := tom.StartConversation(ctx, id("Jerry"), id("Kate"))
		send := func(body, pushData string, transient bool) lcclient.SendResult {
			t.Helper()
			d := &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(text(body)), Dt: proto.String(id(body))}
			if pushData != "" {
				d.PushData = proto.String(pushData)
			}
			if transient {
				d.Transient = proto.Bool(true)
			}
			r, err := tom.SendDirect(ctx, d)
			if err != nil {
				t.Fatalf("send %q: %v", body, err)
			}
			if m, err := jerry.NextMessage(ctx); err != nil || m.Data != text(body) {
				t.Fatalf("delivery of %q: %+v, %v", body, m, err)
			}
			return r
		}

		// The sender's pushData wins over the template; _profile and
		// _apns_team_id move out of the payload.
		r := send("with push data", `{"alert":"custom","badge":"Increment","_profile":"dev","_apns_team_id":"TEAM1"}`, false)
		n := rec.waitMsg(t, kateTok, r.ID)
		jsonEq(t, n.Payload, `{"alert":"custom","badge":1}`)
		if n.Profile != "dev" || n.TeamID != "TEAM1" {
			t.Fatalf("profile %q team %q; want dev, TEAM1", n.Profile, n.TeamID)
		}

		// The hook's pushMessage wins over pushData.
		r = send("use hook", `{"alert":"custom"}`, false)
		jsonEq(t, rec.waitMsg(t, kateTok, r.ID).Payload, `{"alert":"from the hook"}`)

		// Skip: no push.
		r = send("skip push", `{"alert":"custom"}`, false)
		rec.none(t, kateTok, r.ID, "hook said skip")

		// Transient messages are never pushed.
		r = send("typing", "", true)
		rec.none(t, kateTok, r.ID, "transient message")

		// Malformed pushData is refused (4410) and nothing is stored or
		// delivered; the template serves messages without pushData.
		_, err := tom.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(text("bad push data")),
			Dt: proto.String(id("bad push data")), PushData: proto.String(`not json`)})
		if !errors.Is(err, realtime.ErrInvalidMessage) {
			t.Fatalf("send with malformed pushData: %v, want 4410", err)
		}
		r = send("plain", "", false)
		n = rec.waitMsg(t, kateTok, r.ID)
		jsonEq(t, n.Payload, fmt.Sprintf(`{"alert":"New message from %s in %s","badge":2}`, id("Tom"), cid))
		logs, err := tom.History(ctx, &wire.LogsCommand{Cid: proto.String(cid), L: proto.Int32(2)})
		if err != nil || len(logs) != 2 || logs[1].GetMsgId() != r.ID || strings.Contains(logs[0].GetData(), "bad push data") {
			t.Fatalf("history after a refused send: %v, %v", logs, err)
		}
		if len(rec.to(kateTok)) != 3 {
			t.Fatalf("Kate's device got %d pushes, want 3", len(rec.to(kateTok)))
		}
	})
}

func TestNoPushInTransientConversation(t *testing.T) {
	rec := &pushRecorder{}
	var hookCalled sync.Map
	offline := realtime.ReceiversOfflineFunc(func(ctx context.Context, ev *realtime.ReceiversOfflineEvent) (*realtime.ReceiversOfflineResult, error) {
		hookCalled.Store(ev.Conversation.ID, true)
		return nil, nil
	})
	eachStore(t, &hub.Config{Pusher: rec.pusher(), PushTemplate: pushTemplate, Hooks: []any{offline}}, func(t *testing.T, srv *testServer, st realtime.Store, id func(string) string) {
		ctx := ctxT(t)
		kateTok := id("kate.token")
		if err := srv.Hub.RegisterDevice(ctx, realtime.Device{ClientID: id("Kate"), Platform: realtime.PlatformIOS, Token: kateTok}); err != nil {
			t.Fatal(err)
		}
		tom := srv.Login(t, id("Tom"))
		room, err := tom.StartConversationWith(ctx, &wire.ConvCommand{M: []string{id("Kate")}, Transient: proto.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		// Kate joins the chat room, then goes away.
		kate := srv.Login(t, id("Kate"))
		if _, err := convRequest(ctx, kate, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(room)}); err != nil {
			t.Fatal(err)
		}
		if err := kate.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		r, err := tom.SendText(ctx, room, "to the room")
		if err != nil {
			t.Fatal(err)
		}
		// A normal conversation with Kate does push (the sentinel).
		cid, _ := tom.StartConversation(ctx, id("Kate"))
		sentinel, err := tom.SendText(ctx, cid, "direct")
		if err != nil {
			t.Fatal(err)
		}
		rec.waitMsg(t, kateTok, sentinel.ID)
		rec.none(t, kateTok, r.ID, "chat room message")
		if _, ok := hookCalled.Load(room); ok {
			t.Fatal("ReceiversOffline called for a transient conversation")
		}
		if got := rec.to(kateTok); len(got) != 1 {
			t.Fatalf("Kate's device got %d pushes, want only the direct one", len(got))
		}
	})
}

func TestDeviceTokenBoundAtOpenAndUnboundOnLogout(t *testing.T) {
	rec := &pushRecorder{}
	eachStore(t, &hub.Config{Pusher: rec.pusher(), PushTemplate: pushTemplate}, func(t *testing.T, srv *testServer, st realtime.Store, id func(string) string) {
		ctx := ctxT(t)
		ds := st.(realtime.DeviceStore)
		devices := func() []realtime.Device {
			t.Helper()
			d, err := ds.Devices(ctx, []string{id("Kate")})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		open := func(o lcclient.OpenOptions) *lcclient.Client {
			c, err := lcclient.Dial(ctx, srv.WebsocketURL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			c.AppID = srv.AppID
			if _, err := c.Open(ctx, id("Kate"), o); err != nil {
				t.Fatal(err)
			}
			return c
		}
		tok := strings.Repeat("ab", 32) + strings.ReplaceAll(id(""), "-", "")
		// Without bit 4 the token is not bound.
		k := open(lcclient.OpenOptions{DeviceToken: tok})
		time.Sleep(100 * time.Millisecond)
		if d := devices(); len(d) != 0 {
			t.Fatalf("bound without configBitmap bit 4: %+v", d)
		}
		k.Close()
		k = open(lcclient.OpenOptions{DeviceToken: tok, ConfigBitmap: 4})
		// The binding is made just after the opened reply: poll.
		deadline := time.Now().Add(5 * time.Second)
		for len(devices()) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if d := devices(); len(d) != 1 || d[0].Token != tok || d[0].Platform != realtime.PlatformIOS {
			t.Fatalf("devices after open with bit 4 = %+v", d)
		}
		// A drop keeps the binding: Kate's device gets pushes.
		k.Close()
		tom := srv.Login(t, id("Tom"))
		cid, _ := tom.StartConversation(ctx, id("Kate"))
		deadline = time.Now().Add(5 * time.Second)
		for srv.Hub.Online(id("Kate")) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		r, err := tom.SendText(ctx, cid, "while away")
		if err != nil {
			t.Fatal(err)
		}
		rec.waitMsg(t, tok, r.ID)
		// Logout unbinds it.
		k = open(lcclient.OpenOptions{DeviceToken: tok, ConfigBitmap: 4})
		if err := k.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		if d := devices(); len(d) != 0 {
			t.Fatalf("devices after logout = %+v", d)
		}
		r, err = tom.SendText(ctx, cid, "after logout")
		if err != nil {
			t.Fatal(err)
		}
		rec.none(t, tok, r.ID, "unbound device")
	})
}

func TestDeviceEndpointNeedsSessionToken(t *testing.T) {
	rec := &pushRecorder{}
	eachStore(t, &hub.Config{Pusher: rec.pusher(), PushTemplate: pushTemplate}, func(t *testing.T, srv *testServer, st realtime.Store, id func(string) string) {
		ctx := ctxT(t)
		ds := st.(realtime.DeviceStore)
		kate, err := lcclient.Dial(ctx, srv.WebsocketURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(kate.Close)
		kate.AppID = srv.AppID
		st1, err := kate.Open(ctx, id("Kate"), lcclient.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tom := srv.Login(t, id("Tom"))
		tomSt, err := tom.Open(ctx, id("Tom"), lcclient.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tok := id("kate.ios.token")
		call := func(method, sessionToken string) int {
			t.Helper()
			body, _ := json.Marshal(map[string]string{"clientId": id("Kate"), "platform": "ios", "token": tok})
			req, _ := http.NewRequestWithContext(ctx, method, srv.URL()+"/1.1/rtm/devices", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if sessionToken != "" {
				req.Header.Set("X-LC-IM-Session-Token", sessionToken)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		devices := func() int {
			d, err := ds.Devices(ctx, []string{id("Kate")})
			if err != nil {
				t.Fatal(err)
			}
			return len(d)
		}
		for _, bad := range []string{"", "forged.token", tomSt} {
			if code := call(http.MethodPost, bad); code != http.StatusUnauthorized {
				t.Fatalf("POST with token %q: %d, want 401", bad, code)
			}
		}
		if devices() != 0 {
			t.Fatal("refused POST registered a device")
		}
		if code := call(http.MethodPost, st1); code != http.StatusOK {
			t.Fatalf("POST with Kate's session token: %d", code)
		}
		if devices() != 1 {
			t.Fatal("POST did not register the device")
		}
		// Kate goes offline: her registered device gets the push.
		if err := kate.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		cid, _ := tom.StartConversation(ctx, id("Kate"))
		r, err := tom.SendText(ctx, cid, "ping")
		if err != nil {
			t.Fatal(err)
		}
		n := rec.waitMsg(t, tok, r.ID)
		if n.Device.Platform != realtime.PlatformIOS || n.Device.ClientID != id("Kate") {
			t.Fatalf("notification device = %+v", n.Device)
		}
		if code := call(http.MethodDelete, ""); code != http.StatusUnauthorized {
			t.Fatalf("DELETE without token: %d, want 401", code)
		}
		if devices() != 1 {
			t.Fatal("refused DELETE removed the device")
		}
		// Logging out voided that token: DELETE needs a live one.
		if code := call(http.MethodDelete, st1); code != http.StatusUnauthorized {
			t.Fatalf("DELETE with Kate's token from before her logout: %d, want 401", code)
		}
		kate2 := srv.Login(t, id("Kate"))
		st2, err := kate2.Open(ctx, id("Kate"), lcclient.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if code := call(http.MethodDelete, st2); code != http.StatusOK {
			t.Fatalf("DELETE with Kate's session token: %d", code)
		}
		if devices() != 0 {
			t.Fatal("DELETE did not remove the device")
		}
		r, err = tom.SendText(ctx, cid, "pong")
		if err != nil {
			t.Fatal(err)
		}
		rec.none(t, tok, r.ID, "unregistered device")
	})
}

func TestMutedMemberGetsNoPush(t *testing.T) {
	rec := &pushRecorder{}
	eachStore(t, &hub.Config{Pusher: rec.pusher(), PushTemplate: pushTemplate}, func(t *testing.T, srv *testServer, st realtime.Store, id func(string) string) {
		ctx := ctxT(t)
		tok := id("kate.token")
		if err := srv.Hub.RegisterDevice(ctx, realtime.Device{ClientID: id("Kate"), Platform: realtime.PlatformIOS, Token: tok}); err != nil {
			t.Fatal(err)
		}
		tom := srv.Login(t, id("Tom"))
		kate := srv.Login(t, id("Kate"))
		muted, _ := tom.StartConversation(ctx, id("Kate"))
		loud, _ := tom.StartConversation(ctx, id("Kate"), id("Jerry"))
		if _, err := convRequest(ctx, kate, wire.OpType_mute, &wire.ConvCommand{Cid: proto.String(muted)}); err != nil {
			t.Fatal(err)
		}
		if err := kate.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		r, _ := tom.SendText(ctx, muted, "shh")
		sentinel, _ := tom.SendText(ctx, loud, "hey")
		rec.waitMsg(t, tok, sentinel.ID)
		rec.none(t, tok, r.ID, "muted conversation")
	})
}

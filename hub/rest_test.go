package hub_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

const (
	restAppID     = "restapp"
	restMasterKey = "master-secret"
	restAppKey    = "app-key"
)

func restConfig() *hub.Config {
	return &hub.Config{AppID: restAppID, AppKey: restAppKey, MasterKey: restMasterKey}
}

// restClient calls the REST API v2 of a test server with the master key.
type restClient struct {
	t    *testing.T
	base string
	hdr  http.Header
}

func newREST(t *testing.T, srv *testServer) *restClient {
	return restAt(t, srv.URL(), restAppID)
}

// restAt calls the REST API of the hub mounted at mount.
func restAt(t *testing.T, mount, appID string) *restClient {
	h := http.Header{}
	h.Set("X-LC-Id", appID)
	h.Set("X-LC-Key", restMasterKey+",master")
	return &restClient{t: t, base: mount + "/1.2/rtm", hdr: h}
}

// call makes a request and decodes the JSON answer into out (when not
// nil); it returns the status and the raw body.
func (c *restClient) call(method, path string, body any, out any) (int, []byte) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header = c.hdr.Clone()
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return res.StatusCode, b
}

// ok makes a request that must answer 200.
func (c *restClient) ok(method, path string, body any, out any) {
	c.t.Helper()
	if status, b := c.call(method, path, body, out); status != http.StatusOK {
		c.t.Fatalf("%s %s: %d %s", method, path, status, b)
	}
}

// fails makes a request that must fail with status and LeanCloud's body
// carrying code.
func (c *restClient) fails(method, path string, body any, status, code int) {
	c.t.Helper()
	got, b := c.call(method, path, body, nil)
	var e struct {
		Code  int    `json:"code"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || got != status || e.Code != code || e.Error == "" {
		c.t.Fatalf("%s %s: %d %s, want %d with code %d", method, path, got, b, status, code)
	}
}

type restConv struct {
	ObjectID  string         `json:"objectId"`
	Name      string         `json:"name"`
	Members   []string       `json:"m"`
	Muted     []string       `json:"mu"`
	Unique    bool           `json:"unique"`
	Transient bool           `json:"tr"`
	System    bool           `json:"sys"`
	CreatedAt string         `json:"createdAt"`
	UpdatedAt string         `json:"updatedAt"`
	Extra     map[string]any `json:"-"`
}

type restMsg struct {
	Timestamp int64  `json:"timestamp"`
	ConvID    string `json:"conv-id"`
	Data      string `json:"data"`
	From      string `json:"from"`
	ID        string `json:"msg-id"`
	IsRoom    bool   `json:"is-room"`
	Recall    bool   `json:"recall"`
}

type sendAnswer struct {
	ID        string `json:"msg-id"`
	Timestamp int64  `json:"timestamp"`
}

func TestRESTAuth(t *testing.T) {
	st := backends(t)["sqlite"](t)
	t.Run("no master key configured", func(t *testing.T) {
		srv := newServer(t, st, &hub.Config{AppID: restAppID, AppKey: restAppKey})
		c := newREST(t, srv)
		c.fails("GET", "/all-conversations", nil, 401, 401)
	})
	srv := newServer(t, st, restConfig())
	good := newREST(t, srv)
	good.ok("GET", "/all-conversations", nil, nil)
	sign := func(ts string, key string) string {
		sum := md5.Sum([]byte(ts + key))
		return hex.EncodeToString(sum[:])
	}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	stale := strconv.FormatInt(time.Now().Add(-2*time.Hour).UnixMilli(), 10)
	cases := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"no key", map[string]string{"X-LC-Id": restAppID}, 401},
		{"app key only", map[string]string{"X-LC-Id": restAppID, "X-LC-Key": restAppKey}, 401},
		{"app key as master", map[string]string{"X-LC-Id": restAppID, "X-LC-Key": restAppKey + ",master"}, 401},
		{"master key without the suffix", map[string]string{"X-LC-Id": restAppID, "X-LC-Key": restMasterKey}, 401},
		{"wrong app id", map[string]string{"X-LC-Id": "other", "X-LC-Key": restMasterKey + ",master"}, 401},
		{"no app id", map[string]string{"X-LC-Key": restMasterKey + ",master"}, 401},
		{"wrong sign", map[string]string{"X-LC-Id": restAppID, "X-LC-Sign": sign(now, "nope") + "," + now + ",master"}, 401},
		{"sign without master", map[string]string{"X-LC-Id": restAppID, "X-LC-Sign": sign(now, restMasterKey) + "," + now}, 401},
		{"stale sign", map[string]string{"X-LC-Id": restAppID, "X-LC-Sign": sign(stale, restMasterKey) + "," + stale + ",master"}, 401},
		{"sign", map[string]string{"X-LC-Id": restAppID, "X-LC-Sign": sign(now, restMasterKey) + "," + now + ",master"}, 200},
		{"key", map[string]string{"X-LC-Id": restAppID, "X-LC-Key": restMasterKey + ",master"}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newREST(t, srv)
			c.hdr = http.Header{}
			for k, v := range tc.header {
				c.hdr.Set(k, v)
			}
			if tc.status == 200 {
				c.ok("GET", "/all-conversations", nil, nil)
				return
			}
			c.fails("GET", "/all-conversations", nil, tc.status, 401)
			c.fails("POST", "/conversations", map[string]any{"m": []string{"a", "b"}}, tc.status, 401)
		})
	}
	// Refused calls change nothing.
	var res struct{ Results []restConv }
	good.ok("GET", "/all-conversations", nil, &res)
	if len(res.Results) != 0 {
		t.Fatalf("refused calls created %d conversations", len(res.Results))
	}
}

func TestRESTConversations(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		rest := newREST(t, srv)
		tom, jerry, spike := id("Tom"), id("Jerry"), id("Spike")
		jc := srv.Login(t, jerry)

		var c restConv
		rest.ok("POST", "/conversations", map[string]any{"name": id("first"), "m": []string{tom, jerry}, "unique": true,
			"attr": map[string]any{"topic": "cats"}}, &c)
		if c.ObjectID == "" || c.Name != id("first") || !slices.Equal(c.Members, []string{jerry, tom}) || !c.Unique || c.CreatedAt == "" {
			t.Fatalf("created %+v", c)
		}
		if p := nextConv(t, ctx, jc, wire.OpType_joined, c.ObjectID); p == nil {
			t.Fatal("Jerry was not told he joined")
		}
		var again restConv
		rest.ok("POST", "/conversations", map[string]any{"m": []string{jerry, tom}, "unique": true}, &again)
		if again.ObjectID != c.ObjectID {
			t.Fatalf("unique create returned %s, want %s", again.ObjectID, c.ObjectID)
		}
		var room, svc restConv
		rest.ok("POST", "/chatrooms", map[string]any{"name": id("room")}, &room)
		rest.ok("POST", "/service-conversations", map[string]any{"name": id("svc")}, &svc)
		if !room.Transient || !svc.System {
			t.Fatalf("room %+v, service %+v", room, svc)
		}

		var one map[string]any
		rest.ok("GET", "/conversations/"+c.ObjectID, nil, &one)
		if one["objectId"] != c.ObjectID || one["topic"] != "cats" {
			t.Fatalf("get one = %v", one)
		}
		rest.fails("GET", "/conversations/"+"0123456789abcdef01234567", nil, 404, realtime.CodeConvNotFound)

		// Query: each collection keeps its kind; where, order, limit, skip.
		query := func(path string, params url.Values) []restConv {
			t.Helper()
			var res struct{ Results []restConv }
			rest.ok("GET", path+"?"+params.Encode(), nil, &res)
			return res.Results
		}
		names := func(cs []restConv) []string {
			var out []string
			for _, c := range cs {
				out = append(out, c.Name)
			}
			return out
		}
		where := func(w any) url.Values {
			b, _ := json.Marshal(w)
			return url.Values{"where": {string(b)}}
		}
		inRun := where(map[string]any{"name": map[string]any{"$in": []string{id("first"), id("room"), id("svc")}}})
		if got := names(query("/conversations", inRun)); !slices.Equal(got, []string{id("first")}) {
			t.Fatalf("conversations = %v", got)
		}
		if got := names(query("/chatrooms", inRun)); !slices.Equal(got, []string{id("room")}) {
			t.Fatalf("chatrooms = %v", got)
		}
		if got := names(query("/service-conversations", inRun)); !slices.Equal(got, []string{id("svc")}) {
			t.Fatalf("service conversations = %v", got)
		}
		inRun.Set("order", "name")
		if got := names(query("/all-conversations", inRun)); !slices.Equal(got, []string{id("first"), id("room"), id("svc")}) {
			t.Fatalf("all conversations = %v", got)
		}
		inRun.Set("order", "-name")
		inRun.Set("skip", "1")
		inRun.Set("limit", "1")
		if got := names(query("/all-conversations", inRun)); !slices.Equal(got, []string{id("room")}) {
			t.Fatalf("all conversations, -name skip 1 limit 1 = %v", got)
		}
		rest.fails("GET", "/conversations?where=%7Bnope", nil, 400, realtime.CodeConvQueryFailed)

		// Update: Jerry's SDK sees UPDATED.
		var up map[string]any
		rest.ok("PUT", "/conversations/"+c.ObjectID, map[string]any{"name": id("renamed"), "attr.level": 3}, &up)
		if up["objectId"] != c.ObjectID || up["updatedAt"] == nil {
			t.Fatalf("update answered %v", up)
		}
		if u := nextConv(t, ctx, jc, wire.OpType_updated, c.ObjectID); u.GetAttr().GetData() == "" {
			t.Fatalf("updated push without attributes: %v", u)
		}
		rest.ok("GET", "/conversations/"+c.ObjectID, nil, &one)
		if one["name"] != id("renamed") || one["level"] != float64(3) || one["topic"] != "cats" {
			t.Fatalf("after update: %v", one)
		}
		rest.fails("PUT", "/conversations/"+c.ObjectID, map[string]any{"m": []string{tom}}, 400, realtime.CodeInvalidCommand)

		// Members: Spike added, Jerry removed (his SDK gets KICKED).
		rest.ok("POST", "/conversations/"+c.ObjectID+"/members", map[string]any{"client_ids": []string{spike}}, &up)
		var members struct{ Result []string }
		rest.ok("GET", "/conversations/"+c.ObjectID+"/members", nil, &members)
		if !slices.Equal(members.Result, []string{jerry, spike, tom}) {
			t.Fatalf("members = %v", members.Result)
		}
		rest.ok("DELETE", "/conversations/"+c.ObjectID+"/members", map[string]any{"client_ids": []string{jerry}}, &up)
		nextConv(t, ctx, jc, wire.OpType_left, c.ObjectID)
		rest.ok("GET", "/conversations/"+c.ObjectID+"/members", nil, &members)
		if !slices.Equal(members.Result, []string{spike, tom}) {
			t.Fatalf("members after removal = %v", members.Result)
		}
		rest.fails("POST", "/conversations/"+c.ObjectID+"/members", map[string]any{}, 400, realtime.CodeInvalidCommand)

		// Mutes.
		rest.ok("POST", "/conversations/"+c.ObjectID+"/mutes", map[string]any{"client_ids": []string{tom}}, &up)
		rest.ok("GET", "/conversations/"+c.ObjectID+"/mutes", nil, &members)
		if !slices.Equal(members.Result, []string{tom}) {
			t.Fatalf("mutes = %v", members.Result)
		}
		rest.ok("DELETE", "/conversations/"+c.ObjectID+"/mutes", map[string]any{"client_ids": []string{tom}}, &up)
		rest.ok("GET", "/conversations/"+c.ObjectID+"/mutes", nil, &members)
		if len(members.Result) != 0 {
			t.Fatalf("mutes after unmute = %v", members.Result)
		}

		// Delete: gone for REST and for the SDK.
		rest.ok("DELETE", "/conversations/"+c.ObjectID, nil, nil)
		rest.fails("GET", "/conversations/"+c.ObjectID, nil, 404, realtime.CodeConvNotFound)
		rest.fails("DELETE", "/conversations/"+c.ObjectID, nil, 404, realtime.CodeConvNotFound)
		rest.fails("POST", "/conversations/"+c.ObjectID+"/messages", map[string]any{"from_client": tom, "message": "hi"},
			400, realtime.CodeInvalidMessagingTarget)
		sc := srv.Login(t, spike)
		if _, err := sc.SendText(ctx, c.ObjectID, "anyone?"); err == nil {
			t.Fatal("an SDK send to a deleted conversation was accepted")
		}
		if got := names(query("/all-conversations", where(map[string]any{"objectId": c.ObjectID}))); len(got) != 0 {
			t.Fatalf("deleted conversation still queried: %v", got)
		}
	}, restConfig())
}

func TestRESTMessages(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		rest := newREST(t, srv)
		tom, jerry, bot := id("Tom"), id("Jerry"), id("bot")
		jc := srv.Login(t, jerry)
		tc := srv.Login(t, tom)
		var c restConv
		rest.ok("POST", "/conversations", map[string]any{"m": []string{tom, jerry}}, &c)
		path := "/conversations/" + c.ObjectID + "/messages"

		// A REST send reaches the members online, with mentions, and the
		// sender's own devices.
		var sent sendAnswer
		rest.ok("POST", path, map[string]any{"from_client": tom, "message": text("hello"), "mention_client_ids": []string{jerry}}, &sent)
		if sent.ID == "" || sent.Timestamp == 0 {
			t.Fatalf("send answered %+v", sent)
		}
		m, err := jc.NextMessage(ctx)
		if err != nil || m.ID != sent.ID || m.From != tom || m.Data != text("hello") || !slices.Equal(m.MentionPids, []string{jerry}) {
			t.Fatalf("Jerry got %+v, %v", m, err)
		}
		if m, err := tc.NextMessage(ctx); err != nil || m.ID != sent.ID {
			t.Fatalf("Tom's own device got %+v, %v", m, err)
		}
		// no_sync: the sender's own devices do not get it.
		var quiet sendAnswer
		rest.ok("POST", path, map[string]any{"from_client": tom, "message": "quiet", "transient": true, "no_sync": true}, &quiet)
		if m, err := jc.NextMessage(ctx); err != nil || m.Data != "quiet" {
			t.Fatalf("Jerry got %+v, %v", m, err)
		}
		noMore(t, tc, wire.CommandType_direct, "Tom's device after a no_sync send")
		// from_client need not be a member (the application speaks).
		var botMsg sendAnswer
		rest.ok("POST", path, map[string]any{"from_client": bot, "message": map[string]any{"_lctype": -1, "_lctext": "beep"}, "mention_all": true}, &botMsg)
		if m, err := jc.NextMessage(ctx); err != nil || m.From != bot || !m.MentionAll || m.Data != `{"_lctext":"beep","_lctype":-1}` {
			t.Fatalf("Jerry got the bot's %+v, %v", m, err)
		}
		// Transient: delivered, not stored.
		rest.ok("POST", path, map[string]any{"from_client": tom, "message": "typing", "transient": true}, &sendAnswer{})
		if m, err := jc.NextMessage(ctx); err != nil || !m.Transient {
			t.Fatalf("transient: %+v, %v", m, err)
		}
		rest.fails("POST", path, map[string]any{"from_client": tom}, 400, realtime.CodeInvalidCommand)
		rest.fails("POST", path, map[string]any{"message": "x"}, 400, realtime.CodeInvalidCommand)
		rest.fails("POST", path, map[string]any{"from_client": tom, "message": "x", "mention_client_ids": []string{id("stranger")}},
			400, realtime.CodeInvalidMessage)
		rest.fails("POST", path, map[string]any{"from_client": tom, "message": string(make([]byte, 6<<10))}, 400, realtime.CodeMessageTooLarge)

		// History, with the doc's table of bounds.
		var third sendAnswer
		rest.ok("POST", path, map[string]any{"from_client": jerry, "message": "three"}, &third)
		history := func(params string) []string {
			t.Helper()
			var ms []restMsg
			rest.ok("GET", path+"?"+params, nil, &ms)
			var out []string
			for _, m := range ms {
				out = append(out, m.ID)
			}
			return out
		}
		id1, id2, id3 := sent.ID, botMsg.ID, third.ID
		t1, t3 := sent.Timestamp, third.Timestamp
		if got := history(""); !slices.Equal(got, []string{id3, id2, id1}) {
			t.Fatalf("history = %v", got)
		}
		b := func(ts int64, mid string) string { return strconv.FormatInt(ts, 10) + "&msgid=" + mid }
		bt := func(ts int64, mid string) string { return strconv.FormatInt(ts, 10) + "&till_msgid=" + mid }
		table := []struct {
			params string
			want   []string
		}{
			{"timestamp=" + b(t3, id3) + "&till_timestamp=" + bt(t1, id1), []string{id2}},
			{"timestamp=" + b(t3, id3) + "&till_timestamp=" + bt(t1, id1) + "&include_start=true", []string{id3, id2}},
			{"timestamp=" + b(t3, id3) + "&till_timestamp=" + bt(t1, id1) + "&include_stop=true", []string{id2, id1}},
			{"timestamp=" + b(t1, id1) + "&till_timestamp=" + bt(t3, id3) + "&reversed=true", []string{id2}},
			{"timestamp=" + b(t1, id1) + "&till_timestamp=" + bt(t3, id3) + "&reversed=true&include_start=true", []string{id1, id2}},
			{"timestamp=" + b(t1, id1) + "&till_timestamp=" + bt(t3, id3) + "&reversed=true&include_stop=true", []string{id2, id3}},
			{"limit=1", []string{id3}},
			{"reversed=true&limit=2", []string{id1, id2}},
		}
		for _, tc := range table {
			if got := history(tc.params); !slices.Equal(got, tc.want) {
				t.Fatalf("history?%s = %v, want %v", tc.params, got, tc.want)
			}
		}
		rest.fails("GET", path+"?limit=x", nil, 400, realtime.CodeInvalidCommand)

		// Edit and recall: members online get the patches.
		rest.ok("PUT", path+"/"+id1, map[string]any{"from_client": tom, "message": text("edited"), "timestamp": t1}, nil)
		p, err := jc.NextOf(ctx, wire.CommandType_patch)
		if err != nil || p.GetPatchMessage().GetPatches()[0].GetData() != text("edited") {
			t.Fatalf("edit patch: %v, %v", p, err)
		}
		rest.ok("PUT", path+"/"+id2+"/recall", map[string]any{"from_client": bot, "timestamp": botMsg.Timestamp}, nil)
		p, err = jc.NextOf(ctx, wire.CommandType_patch)
		if err != nil || !p.GetPatchMessage().GetPatches()[0].GetRecall() {
			t.Fatalf("recall patch: %v, %v", p, err)
		}
		var ms []restMsg
		rest.ok("GET", path, nil, &ms)
		if len(ms) != 3 || ms[2].Data != text("edited") || !ms[1].Recall {
			t.Fatalf("history after edit and recall: %+v", ms)
		}
		rest.fails("PUT", path+"/nope", map[string]any{"from_client": tom, "message": "x", "timestamp": 1}, 404, realtime.CodeMessageNotFound)
		rest.fails("PUT", path+"/"+id1, map[string]any{"from_client": jerry, "message": "x", "timestamp": t1}, 404, realtime.CodeMessageNotFound)
		rest.fails("PUT", path+"/"+id1+"/recall", map[string]any{"from_client": tom, "timestamp": t1 + 1}, 404, realtime.CodeMessageNotFound)

		// Delete a message: gone from history, clients untouched.
		rest.ok("DELETE", path+"/"+id2+"?from_client="+bot+"&timestamp="+strconv.FormatInt(botMsg.Timestamp, 10), nil, nil)
		if got := history(""); !slices.Equal(got, []string{id3, id1}) {
			t.Fatalf("history after delete = %v", got)
		}
		rest.fails("DELETE", path+"/"+id2, nil, 404, realtime.CodeMessageNotFound)

		// A client's messages and the app's.
		var mine []restMsg
		rest.ok("GET", "/clients/"+jerry+"/messages", nil, &mine)
		if len(mine) != 1 || mine[0].ID != id3 {
			t.Fatalf("Jerry's messages = %+v", mine)
		}
		var all []restMsg
		rest.ok("GET", "/messages?limit=1000", nil, &all)
		var inConv []string
		for _, m := range all {
			if m.ConvID == c.ObjectID {
				inConv = append(inConv, m.ID)
			}
		}
		if !slices.Equal(inConv, []string{id3, id1}) {
			t.Fatalf("app history of the conversation = %v", inConv)
		}
	}, restConfig())
}

func TestRESTModeration(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		rest := newREST(t, srv)
		tom, jerry, kate := id("Tom"), id("Jerry"), id("Kate")
		jc := srv.Login(t, jerry)
		kc := srv.Login(t, kate)
		var c restConv
		rest.ok("POST", "/conversations", map[string]any{"c": tom, "m": []string{tom, jerry, kate}}, &c)
		base := "/conversations/" + c.ObjectID

		// Roles: the SDK sees member info updated.
		var info map[string]any
		rest.ok("POST", base+"/member-infos", map[string]any{"clientId": jerry, "role": "Manager"}, &info)
		if info["objectId"] == nil {
			t.Fatalf("member-infos answered %v", info)
		}
		if p := nextConv(t, ctx, kc, wire.OpType_member_info_changed, c.ObjectID); p.GetInfo().GetPid() != jerry || p.GetInfo().GetRole() != "Manager" {
			t.Fatalf("Kate saw %v", p)
		}
		var roles struct {
			Results []struct{ ClientID, ObjectID, Role string }
		}
		rest.ok("GET", base+"/member-infos", nil, &roles)
		if len(roles.Results) != 2 || roles.Results[0].ClientID != tom || roles.Results[0].Role != "Owner" ||
			roles.Results[1].ClientID != jerry || roles.Results[1].Role != "Manager" {
			t.Fatalf("roles = %+v", roles.Results)
		}
		rest.ok("GET", base+"/member-infos?role=Manager", nil, &roles)
		if len(roles.Results) != 1 || roles.Results[0].ClientID != jerry {
			t.Fatalf("managers = %+v", roles.Results)
		}
		infoID := roles.Results[0].ObjectID
		rest.ok("PUT", base+"/member-infos/"+infoID, map[string]any{"role": "Member"}, nil)
		if p := nextConv(t, ctx, kc, wire.OpType_member_info_changed, c.ObjectID); p.GetInfo().GetRole() != "Member" {
			t.Fatalf("Kate saw %v", p)
		}
		rest.ok("POST", base+"/member-infos", map[string]any{"clientId": jerry, "role": "Manager"}, nil)
		rest.ok("DELETE", base+"/member-infos/"+infoID, nil, nil)
		rest.ok("GET", base+"/member-infos?role=Manager", nil, &roles)
		if len(roles.Results) != 0 {
			t.Fatalf("managers after delete = %+v", roles.Results)
		}
		rest.fails("POST", base+"/member-infos", map[string]any{"clientId": jerry, "role": "Owner"}, 403, realtime.CodeConvUnauthorized)
		rest.fails("POST", base+"/member-infos", map[string]any{"clientId": jerry, "role": "Boss"}, 400, realtime.CodeUnknownRole)
		rest.fails("DELETE", base+"/member-infos/nope", nil, 400, realtime.CodeConvMembershipNeeded)

		// Temporary silence: Jerry cannot send until lifted.
		rest.ok("POST", base+"/temporary-silenceds", map[string]any{"client_id": jerry, "ttl": 60}, nil)
		if _, err := jc.SendText(ctx, c.ObjectID, "hi"); realtime.AsError(err).Code != realtime.CodeConvTempBlacklisted {
			t.Fatalf("silenced Jerry's send: %v", err)
		}
		rest.ok("DELETE", base+"/temporary-silenceds?client_id="+jerry, nil, nil)
		if _, err := jc.SendText(ctx, c.ObjectID, "hi"); err != nil {
			t.Fatalf("Jerry's send after the silence: %v", err)
		}
		rest.fails("POST", base+"/temporary-silenceds", map[string]any{"client_id": jerry, "ttl": 90000}, 400, realtime.CodeInvalidCommand)

		// Permanent silence, with its list.
		rest.ok("POST", base+"/permanent-silenceds", map[string]any{"client_ids": []string{jerry, kate}}, nil)
		if _, err := kc.SendText(ctx, c.ObjectID, "hi"); realtime.AsError(err).Code != realtime.CodeSilenced {
			t.Fatalf("silenced Kate's send: %v", err)
		}
		var page struct {
			ClientIDs []string `json:"client_ids"`
			Next      string   `json:"next"`
		}
		rest.ok("GET", base+"/permanent-silenceds?limit=1", nil, &page)
		first := slices.Clone(page.ClientIDs)
		if len(first) != 1 || page.Next == "" {
			t.Fatalf("first page = %+v", page)
		}
		next := page.Next
		page.ClientIDs, page.Next = nil, ""
		rest.ok("GET", base+"/permanent-silenceds?limit=1&next="+next, nil, &page)
		if got := append(first, page.ClientIDs...); !slices.Equal(got, []string{jerry, kate}) || page.Next != "" {
			t.Fatalf("silenced pages = %v, next %q", got, page.Next)
		}
		rest.ok("DELETE", base+"/permanent-silenceds", map[string]any{"client_ids": []string{jerry, kate}}, nil)
		rest.ok("GET", base+"/permanent-silenceds", nil, &page)
		if len(page.ClientIDs) != 0 {
			t.Fatalf("silenced after removal = %v", page.ClientIDs)
		}

		// Blacklist: Kate is removed (KICKED) and cannot be added back.
		rest.ok("POST", base+"/blacklists", map[string]any{"client_ids": []string{kate}}, nil)
		nextConv(t, ctx, kc, wire.OpType_left, c.ObjectID)
		rest.ok("GET", base+"/blacklists", nil, &page)
		if !slices.Equal(page.ClientIDs, []string{kate}) {
			t.Fatalf("blacklist = %v", page.ClientIDs)
		}
		rest.fails("POST", base+"/members", map[string]any{"client_ids": []string{kate}}, 403, realtime.CodeBlockedByConv)
		rest.ok("DELETE", base+"/blacklists", map[string]any{"client_ids": []string{kate}}, nil)
		rest.ok("POST", base+"/members", map[string]any{"client_ids": []string{kate}}, nil)
	}, restConfig())
}

func TestRESTServiceAndChatrooms(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		rest := newREST(t, srv)
		ann, ben := id("Ann"), id("Ben")
		ac := srv.Login(t, ann)
		bc := srv.Login(t, ben)
		var svc restConv
		rest.ok("POST", "/service-conversations", map[string]any{"name": id("news")}, &svc)
		base := "/service-conversations/" + svc.ObjectID
		rest.ok("POST", base+"/subscribers", map[string]any{"client_id": ann}, nil)
		rest.ok("POST", base+"/subscribers", map[string]any{"client_id": ben}, nil)
		var subs []struct {
			Timestamp  int64  `json:"timestamp"`
			Subscriber string `json:"subscriber"`
			ConvID     string `json:"conv_id"`
		}
		rest.ok("GET", base+"/subscribers", nil, &subs)
		if len(subs) != 2 || subs[0].Subscriber != ann || subs[1].Subscriber != ben || subs[0].ConvID != svc.ObjectID || subs[0].Timestamp == 0 {
			t.Fatalf("subscribers = %+v", subs)
		}
		rest.ok("GET", base+"/subscribers?client_id="+ann, nil, &subs)
		if len(subs) != 1 || subs[0].Subscriber != ben {
			t.Fatalf("subscribers after Ann = %+v", subs)
		}
		var count struct{ Count int }
		rest.ok("GET", base+"/subscribers/count", nil, &count)
		if count.Count != 2 {
			t.Fatalf("count = %d", count.Count)
		}
		var services []struct {
			ConvID string `json:"conv_id"`
		}
		rest.ok("GET", "/clients/"+ann+"/service-conversations", nil, &services)
		if len(services) != 1 || services[0].ConvID != svc.ObjectID {
			t.Fatalf("Ann's services = %+v", services)
		}

		// A broadcast reaches every subscriber; a message to Ben only him.
		var bcast, toBen sendAnswer
		rest.ok("POST", base+"/broadcasts", map[string]any{"from_client": "news-bot", "message": "extra!"}, &bcast)
		for _, c := range []*lcclient.Client{ac, bc} {
			if m, err := c.NextMessage(ctx); err != nil || m.ID != bcast.ID || m.Data != "extra!" {
				t.Fatalf("%s got %+v, %v", c.ClientID, m, err)
			}
		}
		rest.ok("POST", base+"/messages", map[string]any{"from_client": "news-bot", "message": "for Ben", "to_clients": []string{ben}}, &toBen)
		if m, err := bc.NextMessage(ctx); err != nil || m.ID != toBen.ID {
			t.Fatalf("Ben got %+v, %v", m, err)
		}
		noMore(t, ac, wire.CommandType_direct, "Ann, after a message to Ben")
		rest.fails("POST", base+"/messages", map[string]any{"from_client": "news-bot", "message": "x"}, 400, realtime.CodeInvalidCommand)
		histOf := func(client string) []string {
			var ms []restMsg
			rest.ok("GET", base+"/subscribers/"+client+"/messages", nil, &ms)
			var out []string
			for _, m := range ms {
				out = append(out, m.ID)
			}
			return out
		}
		if got := histOf(ann); !slices.Equal(got, []string{bcast.ID}) {
			t.Fatalf("Ann's history = %v", got)
		}
		if got := histOf(ben); !slices.Equal(got, []string{toBen.ID, bcast.ID}) {
			t.Fatalf("Ben's history = %v", got)
		}
		rest.ok("DELETE", base+"/subscribers/"+ben+"/messages/"+toBen.ID, nil, nil)
		if got := histOf(ben); !slices.Equal(got, []string{bcast.ID}) {
			t.Fatalf("Ben's history after delete = %v", got)
		}
		rest.ok("DELETE", base+"/subscribers/"+ben, nil, nil)
		rest.ok("GET", base+"/subscribers/count", nil, &count)
		if count.Count != 1 {
			t.Fatalf("count after unsubscribe = %d", count.Count)
		}

		// Chat room: Ann joins with her SDK; REST sees her online and
		// sends to her.
		var room restConv
		rest.ok("POST", "/chatrooms", map[string]any{"name": id("lobby")}, &room)
		if _, err := ac.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_add.Enum(),
			PeerId: &ann, ConvMessage: &wire.ConvCommand{Cid: &room.ObjectID}}); err != nil {
			t.Fatalf("Ann joins the room: %v", err)
		}
		var online struct{ Result int }
		rest.ok("GET", "/chatrooms/"+room.ObjectID+"/members/online-count", nil, &online)
		if online.Result != 1 {
			t.Fatalf("online count = %d", online.Result)
		}
		var who struct{ Result []string }
		rest.ok("GET", "/chatrooms/"+room.ObjectID+"/members", nil, &who)
		if !slices.Equal(who.Result, []string{ann}) {
			t.Fatalf("room members = %v", who.Result)
		}
		var rm sendAnswer
		rest.ok("POST", "/chatrooms/"+room.ObjectID+"/messages", map[string]any{"from_client": "host", "message": "welcome"}, &rm)
		if m, err := ac.NextMessage(ctx); err != nil || m.ID != rm.ID || m.ConvID != room.ObjectID {
			t.Fatalf("Ann got %+v, %v", m, err)
		}
		var ms []restMsg
		rest.ok("GET", "/chatrooms/"+room.ObjectID+"/messages", nil, &ms)
		if len(ms) != 1 || !ms[0].IsRoom {
			t.Fatalf("room history = %+v", ms)
		}
		rest.ok("DELETE", "/chatrooms/"+room.ObjectID, nil, nil)
		rest.fails("GET", "/chatrooms/"+room.ObjectID+"/members/online-count", nil, 404, realtime.CodeConvNotFound)
	}, restConfig())
}

func TestRESTClients(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		rest := newREST(t, srv)
		tom, jerry, nobody := id("Tom"), id("Jerry"), id("nobody")
		jc := srv.Login(t, jerry)
		var online struct{ Results []string }
		rest.ok("POST", "/clients/check-online", map[string]any{"client_ids": []string{tom, jerry, nobody}}, &online)
		if !slices.Equal(online.Results, []string{jerry}) {
			t.Fatalf("online = %v", online.Results)
		}
		ids := make([]string, 21)
		for i := range ids {
			ids[i] = fmt.Sprintf("c%d", i)
		}
		rest.fails("POST", "/clients/check-online", map[string]any{"client_ids": ids}, 400, realtime.CodeInvalidCommand)

		// Unread counts follow the sends and the reads.
		var c1, c2 restConv
		rest.ok("POST", "/conversations", map[string]any{"m": []string{tom, jerry}}, &c1)
		rest.ok("POST", "/conversations", map[string]any{"m": []string{tom, jerry, nobody}}, &c2)
		for _, c := range []string{c1.ObjectID, c1.ObjectID, c2.ObjectID} {
			rest.ok("POST", "/conversations/"+c+"/messages", map[string]any{"from_client": tom, "message": "x"}, nil)
		}
		unread := func(q string) int {
			var n struct{ Count int }
			rest.ok("GET", "/clients/"+jerry+"/unread-count"+q, nil, &n)
			return n.Count
		}
		if n := unread(""); n != 3 {
			t.Fatalf("unread = %d, want 3", n)
		}
		if n := unread("?conv_id=" + c1.ObjectID); n != 2 {
			t.Fatalf("unread in c1 = %d, want 2", n)
		}
		if err := jc.Read(ctx, c1.ObjectID, 0); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for unread("") != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("unread after reading c1 = %d, want 1", unread(""))
			}
			time.Sleep(20 * time.Millisecond)
		}

		// Kick: session closed 4115 with the reason, as a logout by the app.
		rest.ok("POST", "/clients/"+jerry+"/kick", map[string]any{"reason": "bye"}, nil)
		for {
			p, err := jc.NextOf(ctx, wire.CommandType_session)
			if err != nil {
				t.Fatalf("waiting for the kick: %v", err)
			}
			if p.GetOp() == wire.OpType_closed {
				if p.GetSessionMessage().GetCode() != realtime.CodeKickedByApp || p.GetSessionMessage().GetDetail() != "bye" {
					t.Fatalf("kicked with %v", p.GetSessionMessage())
				}
				break
			}
		}
		rest.ok("POST", "/clients/check-online", map[string]any{"client_ids": []string{jerry}}, &online)
		if len(online.Results) != 0 {
			t.Fatalf("online after kick = %v", online.Results)
		}
		rest.fails("POST", "/clients/"+jerry+"/kick", map[string]any{"reason": "a reason far longer than twenty"}, 400, realtime.CodeInvalidCommand)
	}, restConfig())
}

func TestRESTRateLimit(t *testing.T) {
	cfg := restConfig()
	cfg.Limits.RESTMessageRate = hub.Rate{PerSecond: 0.001, Burst: 2}
	srv := newServer(t, backends(t)["sqlite"](t), cfg)
	rest := newREST(t, srv)
	var c restConv
	rest.ok("POST", "/conversations", map[string]any{"m": []string{"a", "b"}}, &c)
	path := "/conversations/" + c.ObjectID + "/messages"
	for range 2 {
		rest.ok("POST", path, map[string]any{"from_client": "a", "message": "x"}, nil)
	}
	rest.fails("POST", path, map[string]any{"from_client": "a", "message": "x"}, 429, 429)
	// Other calls are not in the message quota.
	rest.ok("GET", "/conversations/"+c.ObjectID, nil, nil)
}

func TestRESTUnknownRoute(t *testing.T) {
	srv := newServer(t, backends(t)["sqlite"](t), restConfig())
	rest := newREST(t, srv)
	rest.fails("GET", "/nope", nil, 404, 404)
	rest.fails("PATCH", "/conversations", nil, 405, 405)
}

// TestRESTAcrossNodes: a REST call answered by one node reaches the SDK
// clients of another, and the other node's caches follow it.
func TestRESTAcrossNodes(t *testing.T) {
	eachCluster(t, 2, &hub.Config{MasterKey: restMasterKey}, func(t *testing.T, nodes []*clusterNode) {
		ctx := ctxT(t)
		rest := restAt(t, nodes[0].srv.URL+"/im", "cluster")
		jerry := nodes[1].login(t, "Jerry", lcclient.OpenOptions{})
		kate := nodes[1].login(t, "Kate", lcclient.OpenOptions{})
		var c restConv
		rest.ok("POST", "/conversations", map[string]any{"c": "Tom", "m": []string{"Tom", "Jerry", "Kate"}}, &c)
		nextConv(t, ctx, jerry, wire.OpType_joined, c.ObjectID)

		tom := nodes[1].login(t, "Tom", lcclient.OpenOptions{})
		var sent sendAnswer
		rest.ok("POST", "/conversations/"+c.ObjectID+"/messages", map[string]any{"from_client": "Tom", "message": "across"}, &sent)
		if m, err := jerry.NextMessage(ctx); err != nil || m.ID != sent.ID || m.Data != "across" {
			t.Fatalf("Jerry on the other node got %+v, %v", m, err)
		}
		if m, err := tom.NextMessage(ctx); err != nil || m.ID != sent.ID {
			t.Fatalf("Tom's device on the other node got %+v, %v", m, err)
		}
		// no_sync holds on the other node too.
		rest.ok("POST", "/conversations/"+c.ObjectID+"/messages", map[string]any{"from_client": "Tom", "message": "quiet", "no_sync": true}, &sent)
		if m, err := jerry.NextMessage(ctx); err != nil || m.ID != sent.ID {
			t.Fatalf("Jerry got %+v, %v", m, err)
		}
		noMore(t, tom, wire.CommandType_direct, "Tom's device on the other node after a no_sync send")
		rest.ok("POST", "/conversations/"+c.ObjectID+"/member-infos", map[string]any{"clientId": "Jerry", "role": "Manager"}, nil)
		if p := nextConv(t, ctx, kate, wire.OpType_member_info_changed, c.ObjectID); p.GetInfo().GetPid() != "Jerry" {
			t.Fatalf("Kate saw %v", p)
		}
		rest.ok("DELETE", "/conversations/"+c.ObjectID+"/members", map[string]any{"client_ids": []string{"Kate"}}, nil)
		nextConv(t, ctx, kate, wire.OpType_left, c.ObjectID)
		// Node 1 sends Kate nothing more of it.
		rest.ok("POST", "/conversations/"+c.ObjectID+"/messages", map[string]any{"from_client": "Tom", "message": "after"}, nil)
		if m, err := jerry.NextMessage(ctx); err != nil || m.Data != "after" {
			t.Fatalf("Jerry: %+v, %v", m, err)
		}
		noMore(t, kate, wire.CommandType_direct, "Kate after her removal on the other node")

		// A deletion on node 0: node 1 forgets the conversation (its
		// cached copy answered the GET above) and refuses Jerry's send.
		rest1 := restAt(t, nodes[1].srv.URL+"/im", "cluster")
		rest1.ok("GET", "/conversations/"+c.ObjectID, nil, nil)
		rest.ok("DELETE", "/conversations/"+c.ObjectID, nil, nil)
		deadline := time.Now().Add(5 * time.Second)
		for {
			if status, _ := rest1.call("GET", "/conversations/"+c.ObjectID, nil, nil); status == http.StatusNotFound {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("node 1 still serves a conversation deleted on node 0")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := jerry.SendText(ctx, c.ObjectID, "still there?"); realtime.AsError(err).Code != realtime.CodeInvalidMessagingTarget {
			t.Fatalf("Jerry's send to the deleted conversation: %v", err)
		}

		// A kick on node 0 ends Jerry's session on node 1.
		rest.ok("POST", "/clients/Jerry/kick", map[string]any{"reason": "maintenance"}, nil)
		for {
			p, err := jerry.NextOf(ctx, wire.CommandType_session)
			if err != nil {
				t.Fatalf("waiting for the kick: %v", err)
			}
			if p.GetOp() == wire.OpType_closed {
				if p.GetSessionMessage().GetCode() != realtime.CodeKickedByApp {
					t.Fatalf("closed with %v", p.GetSessionMessage())
				}
				break
			}
		}
	})
}

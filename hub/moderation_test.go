package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

// nextConv waits for a conv push of op about cid.
func nextConv(t *testing.T, ctx context.Context, c *lcclient.Client, op wire.OpType, cid string) *wire.ConvCommand {
	t.Helper()
	for {
		p, err := c.NextOf(ctx, wire.CommandType_conv)
		if err != nil {
			t.Fatalf("%s waiting for %s: %v", c.ClientID, op, err)
		}
		if p.I == nil && p.GetOp() == op && p.GetConvMessage().GetCid() == cid {
			return p.GetConvMessage()
		}
	}
}

func TestMemberRoles(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		kate := srv.Login(t, id("Kate"))
		cid, _ := tom.StartConversationWith(ctx, &wire.ConvCommand{M: []string{id("Tom"), id("Jerry"), id("Kate")}})
		setRole := func(c *lcclient.Client, target, role string) error {
			_, err := convRequest(ctx, c, wire.OpType_member_info_update, &wire.ConvCommand{Cid: proto.String(cid),
				TargetClientId: proto.String(target), Info: &wire.ConvMemberInfo{Pid: proto.String(target), Role: proto.String(role)}})
			return err
		}
		// A member cannot appoint; the owner can, and everyone hears it.
		wantCode(t, setRole(jerry, id("Kate"), "Manager"), realtime.CodeConvUnauthorized, "a member appointing")
		if err := setRole(tom, id("Jerry"), "Manager"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*lcclient.Client{tom, jerry, kate} {
			p := nextConv(t, ctx, c, wire.OpType_member_info_changed, cid)
			if p.GetInfo().GetPid() != id("Jerry") || p.GetInfo().GetRole() != "Manager" || p.GetInitBy() != id("Tom") {
				t.Fatalf("%s got member_info_changed %v", c.ClientID, p)
			}
		}
		// Nobody takes the owner's place, and a manager cannot make a manager.
		wantCode(t, setRole(tom, id("Kate"), "Owner"), realtime.CodeConvUnauthorized, "making an owner")
		wantCode(t, setRole(jerry, id("Kate"), "Manager"), realtime.CodeConvUnauthorized, "a manager appointing a manager")
		wantCode(t, setRole(tom, id("Kate"), "Admin"), realtime.CodeUnknownRole, "unknown role")
		wantCode(t, setRole(tom, id("Nobody"), "Manager"), realtime.CodeConvMembershipNeeded, "role of a non-member")

		// getAllMemberInfo: GET /1.1/classes/_ConversationMemberInfo with
		// the session token, both query forms.
		st, err := kate.Open(ctx, id("Kate"), lcclient.OpenOptions{}) // the same socket again: a fresh token
		if err != nil {
			t.Fatal(err)
		}
		for _, query := range []url.Values{
			{"client_id": {id("Kate")}, "where": {`{"cid":"` + cid + `"}`}},
			{"client_id": {id("Kate")}, "cid": {cid}},
		} {
			req, _ := http.NewRequest("GET", srv.URL()+"/1.1/classes/_ConversationMemberInfo?"+query.Encode(), nil)
			req.Header.Set("X-LC-IM-Session-Token", st)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Results []struct{ Cid, ClientID, Role, ObjectID string } `json:"results"`
			}
			json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			roles := map[string]string{}
			for _, r := range body.Results {
				if r.Cid != cid || r.ObjectID == "" {
					t.Fatalf("member info row %+v", r)
				}
				roles[r.ClientID] = r.Role
			}
			if res.StatusCode != 200 || roles[id("Tom")] != "Owner" || roles[id("Jerry")] != "Manager" || roles[id("Kate")] != "" {
				t.Fatalf("member infos (%v): %d %v", query, res.StatusCode, roles)
			}
		}
		req, _ := http.NewRequest("GET", srv.URL()+"/1.1/classes/_ConversationMemberInfo?client_id="+id("Kate")+"&cid="+cid, nil)
		req.Header.Set("X-LC-IM-Session-Token", "forged")
		if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("member infos without a valid session token: %v %v", res, err)
		}
		// Demoting through the Go API is heard too.
		if err := srv.Hub.SetRole(ctx, cid, "", id("Jerry"), realtime.RoleMember); err != nil {
			t.Fatal(err)
		}
		if p := nextConv(t, ctx, kate, wire.OpType_member_info_changed, cid); p.GetInfo().GetRole() != "Member" {
			t.Fatalf("demotion pushed as %v", p)
		}
	}, nil)
}

func TestSilencedMembersCannotSend(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		kate := srv.Login(t, id("Kate"))
		cid, _ := tom.StartConversationWith(ctx, &wire.ConvCommand{M: []string{id("Tom"), id("Jerry"), id("Kate")}})
		shutup := func(c *lcclient.Client, op wire.OpType, ids ...string) (*wire.ConvCommand, error) {
			res, err := convRequest(ctx, c, op, &wire.ConvCommand{Cid: proto.String(cid), M: ids})
			return res.GetConvMessage(), err
		}
		// A member may not silence; the owner may, except itself.
		_, err := shutup(jerry, wire.OpType_add_shutup, id("Kate"))
		wantCode(t, err, realtime.CodeConvUnauthorized, "a member silencing")
		res, err := shutup(tom, wire.OpType_add_shutup, id("Kate"), id("Tom"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.GetAllowedPids(), []string{id("Kate")}) || len(res.GetFailedPids()) != 1 ||
			res.GetFailedPids()[0].GetCode() != realtime.CodeConvUnauthorized || !slices.Equal(res.GetFailedPids()[0].GetPids(), []string{id("Tom")}) {
			t.Fatalf("add_shutup = %v", res)
		}
		nextConv(t, ctx, kate, wire.OpType_shutuped, cid)
		if p := nextConv(t, ctx, jerry, wire.OpType_members_shutuped, cid); !slices.Equal(p.GetM(), []string{id("Kate")}) {
			t.Fatalf("members_shutuped = %v", p)
		}
		// Kate cannot send but still receives.
		_, err = kate.SendText(ctx, cid, "let me talk")
		wantCode(t, err, realtime.CodeSilenced, "a silenced member's send")
		if _, err := tom.SendText(ctx, cid, "quiet please"); err != nil {
			t.Fatal(err)
		}
		if m, err := kate.NextMessage(ctx); err != nil || m.Data != text("quiet please") {
			t.Fatalf("silenced member's delivery: %v, %v", m, err)
		}
		q, err := convRequest(ctx, jerry, wire.OpType_query_shutup, &wire.ConvCommand{Cid: proto.String(cid)})
		if err != nil || !slices.Equal(q.GetConvMessage().GetM(), []string{id("Kate")}) || q.GetConvMessage().GetNext() != "" {
			t.Fatalf("query_shutup = %v, %v", q, err)
		}
		if _, err := shutup(tom, wire.OpType_remove_shutup, id("Kate")); err != nil {
			t.Fatal(err)
		}
		nextConv(t, ctx, kate, wire.OpType_unshutuped, cid)
		if _, err := kate.SendText(ctx, cid, "thanks"); err != nil {
			t.Fatalf("send after unsilence: %v", err)
		}
		// A silence with an end (the Go API, REST's temporary silence)
		// answers 4315 while it lasts.
		if _, err := srv.Hub.Silence(ctx, cid, []string{id("Jerry")}, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		_, err = jerry.SendText(ctx, cid, "hm")
		wantCode(t, err, realtime.CodeConvTempBlacklisted, "a temporarily silenced member's send")
	}, nil)
}

func TestBlacklistRemovesAndKeepsOut(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		kate := srv.Login(t, id("Kate"))
		cid, _ := tom.StartConversationWith(ctx, &wire.ConvCommand{M: []string{id("Tom"), id("Jerry"), id("Kate")}})
		blacklist := func(c *lcclient.Client, op wire.OpType, ids ...string) (*wire.BlacklistCommand, error) {
			res, err := c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_blacklist.Enum(), Op: op.Enum(),
				PeerId: proto.String(c.ClientID), BlacklistMessage: &wire.BlacklistCommand{SrcCid: proto.String(cid), ToPids: ids}})
			return res.GetBlacklistMessage(), err
		}
		_, err := blacklist(jerry, wire.OpType_block, id("Kate"))
		wantCode(t, err, realtime.CodeConvUnauthorized, "a member blocking")
		res, err := blacklist(tom, wire.OpType_block, id("Kate"), id("Spike"))
		if err != nil || len(res.GetAllowedPids()) != 2 {
			t.Fatalf("block = %v, %v", res, err)
		}
		// Kate is told and removed; Jerry sees her blocked and gone.
		nextConv(t, ctx, kate, wire.OpType_blocked, cid)
		nextConv(t, ctx, kate, wire.OpType_left, cid)
		nextConv(t, ctx, jerry, wire.OpType_members_blocked, cid)
		if p := nextConv(t, ctx, jerry, wire.OpType_members_left, cid); !slices.Equal(p.GetM(), []string{id("Kate")}) {
			t.Fatalf("members_left = %v", p)
		}
		_, err = kate.SendText(ctx, cid, "still here?")
		wantCode(t, err, realtime.CodeInvalidMessagingTarget, "a blocked member's send")
		// She cannot come back, nor be added (partial failure), until
		// unblocked.
		add, err := convRequest(ctx, kate, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(cid)})
		if err != nil || len(add.GetConvMessage().GetAllowedPids()) != 0 || add.GetConvMessage().GetFailedPids()[0].GetCode() != realtime.CodeBlockedByConv {
			t.Fatalf("blocked self-join = %v, %v", add, err)
		}
		add, err = convRequest(ctx, tom, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("Kate"), id("Lucy")}})
		if err != nil || !slices.Equal(add.GetConvMessage().GetAllowedPids(), []string{id("Lucy")}) ||
			!slices.Equal(add.GetConvMessage().GetFailedPids()[0].GetPids(), []string{id("Kate")}) {
			t.Fatalf("adding a blocked and a free client = %v, %v", add, err)
		}
		if _, err := srv.Hub.AddMembers(ctx, cid, "", []string{id("Kate")}); !errors.Is(err, realtime.ErrBlockedByConv) {
			t.Fatalf("Go API add of a blocked client: %v", err)
		}
		q, err := blacklist(jerry, wire.OpType_query)
		if err != nil || !slices.Equal(q.GetBlockedPids(), []string{id("Kate"), id("Spike")}) {
			t.Fatalf("blacklist query = %v, %v", q, err)
		}
		if _, err := blacklist(tom, wire.OpType_unblock, id("Kate")); err != nil {
			t.Fatal(err)
		}
		nextConv(t, ctx, kate, wire.OpType_unblocked, cid)
		if _, err := convRequest(ctx, kate, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(cid)}); err != nil {
			t.Fatalf("join after unblock: %v", err)
		}
		if _, err := kate.SendText(ctx, cid, "back"); err != nil {
			t.Fatalf("send after rejoining: %v", err)
		}
	}, nil)
}

func TestBlacklistSignatures(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		cid, _ := tom.StartConversationWith(ctx, &wire.ConvCommand{M: []string{id("Tom"), id("Jerry")}})
		block := func(sig string, ts int64, nonce string) error {
			_, err := tom.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_blacklist.Enum(), Op: wire.OpType_block.Enum(),
				PeerId: proto.String(tom.ClientID), BlacklistMessage: &wire.BlacklistCommand{SrcCid: proto.String(cid),
					ToPids: []string{id("Jerry")}, S: proto.String(sig), T: proto.Int64(ts), N: proto.String(nonce)}})
			return err
		}
		ts := time.Now().UnixMilli()
		wantCode(t, block("bad", ts, "n1"), realtime.CodeBlacklistSignature, "bad blacklist signature")
		msg := hub.BlacklistSignatureMessage("app", id("Tom"), cid, []string{id("Jerry")}, ts, "n2", "conversation-block-clients")
		if err := block(hub.Sign(testMasterKey, msg), ts, "n2"); err != nil {
			t.Fatalf("signed block: %v", err)
		}
	}, &hub.Config{AppID: "app", MasterKey: testMasterKey, RequireBlacklistSignature: true})
}

// createIMClient(AV.User): POST /1.1/rtm/sign turns the app user's session
// token into a login signature for the client id the resolver names.
func TestSignForAppUsers(t *testing.T) {
	resolver := hub.UserResolverFunc(func(ctx context.Context, token string) (string, error) {
		if after, ok := strings.CutPrefix(token, "valid-"); ok {
			return after, nil
		}
		return "", realtime.ErrSignatureFailed.WithDetail("unknown user")
	})
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		sign := func(token string) (*http.Response, map[string]any) {
			res, err := http.Post(srv.URL()+"/1.1/rtm/sign", "application/json", strings.NewReader(`{"session_token":"`+token+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body map[string]any
			json.NewDecoder(res.Body).Decode(&body)
			return res, body
		}
		res, body := sign("valid-" + id("user1"))
		if res.StatusCode != 200 || body["client_id"] != id("user1") {
			t.Fatalf("sign = %d %v", res.StatusCode, body)
		}
		ts, _ := body["timestamp"].(float64) // a JSON number, as the SDK requires
		c, err := lcclient.Dial(ctx, srv.WebsocketURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		c.AppID = "app"
		if _, err := c.Open(ctx, id("user1"), lcclient.OpenOptions{Signature: body["signature"].(string), Timestamp: int64(ts), Nonce: body["nonce"].(string)}); err != nil {
			t.Fatalf("login with the signature: %v", err)
		}
		if res, body := sign("forged"); res.StatusCode != http.StatusUnauthorized || body["code"] != float64(realtime.CodeSignatureFailed) {
			t.Fatalf("a refused token = %d %v", res.StatusCode, body)
		}
	}, &hub.Config{AppID: "app", MasterKey: testMasterKey, RequireLoginSignature: true, UserResolver: resolver})
}

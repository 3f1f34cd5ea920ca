package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

func TestPushStyleSyncSendsNewest20AsOfflineMessages(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		var sent []lcclient.SendResult
		for i := range 25 {
			r, err := tom.SendText(ctx, cid, fmt.Sprint("missed ", i))
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, r)
		}
		jerry := srv.Login(t, id("Jerry"), lcclient.Subprotocol(wire.ProtocolBinaryV1))
		for i := 5; i < 25; i++ {
			p, err := jerry.NextOf(ctx, wire.CommandType_direct)
			if err != nil {
				t.Fatalf("missed message %d: %v", i, err)
			}
			d := p.GetDirectMessage()
			if d.GetId() != sent[i].ID || d.GetMsg() != text(fmt.Sprint("missed ", i)) || !d.GetOffline() || d.GetCid() != cid || d.GetFromPeerId() != id("Tom") {
				t.Fatalf("push %d = %v; want message %s offline", i-5, d, sent[i].ID)
			}
			if i == 5 && !d.GetHasMore() {
				t.Fatal("first of 20 out of 25 missed messages does not say hasMore")
			}
		}
		noMore(t, jerry, wire.CommandType_direct, "only the newest 20")
		noMore(t, jerry, wire.CommandType_unread, "push-style sync sends no unread notification")

		// The default protocol gets the unread count instead.
		j3 := srv.Login(t, id("Jerry"))
		p, err := j3.NextOf(ctx, wire.CommandType_unread)
		if err != nil || len(p.GetUnreadMessage().GetConvs()) != 1 || p.GetUnreadMessage().GetConvs()[0].GetUnread() != 25 {
			t.Fatalf("unread on lc.protobuf2.3 = %v, %v", p, err)
		}
		noMore(t, j3, wire.CommandType_direct, "no offline pushes on lc.protobuf2.3")
	}, nil)
}

// echo makes sure the hub handled everything c sent before.
func echo(t *testing.T, ctx context.Context, c *lcclient.Client) {
	t.Helper()
	if _, err := c.Request(ctx, &wire.GenericCommand{Cmd: wire.CommandType_echo.Enum()}); err != nil {
		t.Fatal(err)
	}
}

func unreadOf(t *testing.T, ctx context.Context, srv *testServer, client, cid string) int {
	t.Helper()
	c := srv.Login(t, client)
	defer c.Close()
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	p, err := c.NextOf(short, wire.CommandType_unread)
	if err != nil {
		return 0
	}
	for _, u := range p.GetUnreadMessage().GetConvs() {
		if u.GetCid() == cid {
			return int(u.GetUnread())
		}
	}
	return 0
}

func TestReadAndAckOfForeignConversationAreIgnored(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		var last lcclient.SendResult
		for i := range 2 {
			last, _ = tom.SendText(ctx, cid, fmt.Sprint("m", i))
		}
		spike := srv.Login(t, id("Spike"))
		if err := spike.Read(ctx, cid, 0); err != nil {
			t.Fatal(err)
		}
		if err := spike.Ack(ctx, cid, last.Timestamp, last.Timestamp); err != nil {
			t.Fatal(err)
		}
		echo(t, ctx, spike)
		noMore(t, tom, wire.CommandType_rcp, "no receipts from a non-member")
		delivered, read, err := srv.Hub.Receipts(ctx, cid, last.ID)
		if err != nil || len(delivered) != 0 || len(read) != 0 {
			t.Fatalf("receipts after a stranger's read/ack: %v %v %v", delivered, read, err)
		}
		if n := unreadOf(t, ctx, srv, id("Jerry"), cid); n != 2 {
			t.Fatalf("Jerry's unread = %d, want 2", n)
		}
		// Spike was not made a member either.
		if _, err := spike.History(ctx, &wire.LogsCommand{Cid: proto.String(cid)}); err == nil {
			t.Fatal("stranger reads history after read/ack")
		}
	}, nil)
}

func TestReadInTheFutureClampsToNewestMessage(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		first, _ := tom.SendText(ctx, cid, "before")
		if err := jerry.Read(ctx, cid, time.Now().Add(time.Hour).UnixMilli()); err != nil {
			t.Fatal(err)
		}
		echo(t, ctx, jerry)
		later, err := tom.SendText(ctx, cid, "after")
		if err != nil {
			t.Fatal(err)
		}
		_, read, _ := srv.Hub.Receipts(ctx, cid, first.ID)
		if !slices.Equal(read, []string{id("Jerry")}) {
			t.Fatalf("first message read by %v", read)
		}
		_, read, _ = srv.Hub.Receipts(ctx, cid, later.ID)
		if len(read) != 0 {
			t.Fatalf("a message sent after the read is read by %v: the future cursor was not clamped", read)
		}
		jerry.Close()
		if n := unreadOf(t, ctx, srv, id("Jerry"), cid); n != 1 {
			t.Fatalf("unread after a future read and one more message = %d, want 1", n)
		}
	}, nil)
}

func TestWillInTransientConversationRefused(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		room, err := tom.StartConversationWith(ctx, &wire.ConvCommand{Transient: proto.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tom.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(room), Msg: proto.String(text("bye")), Will: proto.Bool(true)})
		wantCode(t, err, realtime.CodeInvalidMessage, "will in a chat room")
		// A transient will anywhere is refused too.
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		_, err = tom.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(text("bye")), Will: proto.Bool(true), Transient: proto.Bool(true)})
		wantCode(t, err, realtime.CodeInvalidMessage, "transient will")
	}, nil)
}

func ids(convs []map[string]any) []string {
	var out []string
	for _, c := range convs {
		s, _ := c["objectId"].(string)
		out = append(out, s)
	}
	return out
}

func TestConversationQueryForms(t *testing.T) {
	for _, vis := range []hub.ConversationVisibility{hub.VisibleToAll, hub.VisibleToMembers} {
		t.Run(fmt.Sprint("visibility ", vis), func(t *testing.T) { testConversationQueryForms(t, vis) })
	}
}

func testConversationQueryForms(t *testing.T, vis hub.ConversationVisibility) {
	private := vis == hub.VisibleToMembers
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		spike := srv.Login(t, id("Spike"))
		start := func(c *lcclient.Client, name string, others ...string) string {
			t.Helper()
			cid, err := c.StartConversationWith(ctx, &wire.ConvCommand{M: append(others, c.ClientID),
				Attr: &wire.JsonObjectMessage{Data: proto.String(fmt.Sprintf(`{"name":%q}`, name))}})
			if err != nil {
				t.Fatal(err)
			}
			return cid
		}
		a := start(tom, "a", id("Jerry"))
		b := start(tom, "b", id("Jerry"), id("Kate"))
		c := start(tom, "c", id("Kate"))
		d := start(jerry, "d", id("Kate")) // without Tom
		q := func(cl *lcclient.Client, where string, sort string, limit, skip int32) []string {
			t.Helper()
			cm := &wire.ConvCommand{}
			if where != "" {
				cm.Where = &wire.JsonObjectMessage{Data: proto.String(where)}
			}
			if sort != "" {
				cm.Sort = proto.String(sort)
			}
			if limit > 0 {
				cm.Limit = proto.Int32(limit)
			}
			if skip > 0 {
				cm.Skip = proto.Int32(skip)
			}
			got := ids(queryConvs(t, ctx, cl, cm))
			return got
		}
		js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
		sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
		check := func(what string, got, want []string) {
			t.Helper()
			if !slices.Equal(got, want) {
				t.Fatalf("%s = %v, want %v", what, got, want)
			}
		}
		// By id: LeanCloud finds any conversation (join by id); private
		// groups only the client's own.
		if private {
			check("objectId $in", sorted(q(tom, js(map[string]any{"objectId": map[string]any{"$in": []string{a, c, d}}}), "", 0, 0)), sorted([]string{a, c}))
		} else {
			check("objectId $in", sorted(q(tom, js(map[string]any{"objectId": map[string]any{"$in": []string{a, c, d}}}), "", 0, 0)), sorted([]string{a, c, d}))
		}
		check("objectId equal", q(tom, js(map[string]any{"objectId": b}), "", 0, 0), []string{b})
		check("m $all", q(tom, js(map[string]any{"m": map[string]any{"$all": []string{id("Tom"), id("Jerry")}}}), "name", 0, 0), []string{a, b})
		check("m $size", q(tom, js(map[string]any{"m": map[string]any{"$size": 3, "$all": []string{id("Tom")}}}), "", 0, 0), []string{b})
		check("sort name", q(tom, "", "name", 0, 0), []string{a, b, c})
		check("sort -name", q(tom, "", "-name", 0, 0), []string{c, b, a})
		check("limit", q(tom, "", "name", 2, 0), []string{a, b})
		check("limit+skip", q(tom, "", "name", 2, 1), []string{b, c})
		withKateOf2 := []string{c}
		if !private {
			withKateOf2 = sorted([]string{c, d})
		}
		check("$and", sorted(q(tom, js(map[string]any{"$and": []any{map[string]any{"m": id("Kate")}, map[string]any{"m": map[string]any{"$size": 2}}}}), "", 0, 0)), withKateOf2)
		// Names are in the results.
		res := queryConvs(t, ctx, tom, &wire.ConvCommand{Where: &wire.JsonObjectMessage{Data: proto.String(js(map[string]any{"objectId": a}))}})
		if len(res) != 1 || res[0]["name"] != "a" || res[0]["c"] != id("Tom") {
			t.Fatalf("result = %v", res)
		}
		// Without conditions a query finds one's own conversations only.
		check("stranger, no conditions", q(spike, "", "", 0, 0), nil)
		if private {
			// Private groups: a client never sees conversations it is not
			// a member of, and cannot join them by id.
			check("stranger by id", q(spike, js(map[string]any{"objectId": map[string]any{"$in": []string{a, b, c, d}}}), "", 0, 0), nil)
			check("stranger by member", q(spike, js(map[string]any{"m": id("Tom")}), "", 0, 0), nil)
			check("stranger by $all", q(spike, js(map[string]any{"m": map[string]any{"$all": []string{id("Jerry")}}}), "", 0, 0), nil)
			check("Tom asking for Jerry's", sorted(q(tom, js(map[string]any{"m": id("Jerry")}), "", 0, 0)), sorted([]string{a, b}))
			_, err := convRequest(ctx, spike, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(a)})
			wantCode(t, err, realtime.CodeConvNotAllowed, "self-join of a private group")
		} else {
			check("stranger by id", sorted(q(spike, js(map[string]any{"objectId": map[string]any{"$in": []string{a, b, c, d}}}), "", 0, 0)), sorted([]string{a, b, c, d}))
			check("Tom asking for Jerry's", sorted(q(tom, js(map[string]any{"m": id("Jerry")}), "", 0, 0)), sorted([]string{a, b, d}))
			// ... and joins by id, as on LeanCloud.
			if _, err := convRequest(ctx, spike, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(a)}); err != nil {
				t.Fatalf("join by id: %v", err)
			}
			check("after joining", q(spike, "", "", 0, 0), []string{a})
		}
		// Bad where is a coded error.
		// Bad where is a coded error (an unknown key is a custom attribute).
		_, err := convRequest(ctx, tom, wire.OpType_query, &wire.ConvCommand{Where: &wire.JsonObjectMessage{Data: proto.String(`{"secret":{"$where":1}}`)}})
		wantCode(t, err, realtime.CodeConvQueryFailed, "unsupported where operator")
	}, &hub.Config{ConversationVisibility: vis})
}

func TestMemberChangePushes(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		kate := srv.Login(t, id("Kate"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		convPush := func(c *lcclient.Client, op wire.OpType) *wire.ConvCommand {
			t.Helper()
			for {
				p, err := c.NextOf(ctx, wire.CommandType_conv)
				if err != nil {
					t.Fatalf("%s waiting for %s: %v", c.ClientID, op, err)
				}
				if p.GetOp() == op && p.GetConvMessage().GetCid() == cid {
					return p.GetConvMessage()
				}
			}
		}
		// The start itself: Jerry was invited, and both members joined.
		convPush(jerry, wire.OpType_joined)
		if cm := convPush(jerry, wire.OpType_members_joined); !slices.Equal(cm.GetM(), []string{id("Jerry"), id("Tom")}) {
			t.Fatalf("members_joined at start = %v", cm)
		}
		if _, err := convRequest(ctx, tom, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("Kate")}}); err != nil {
			t.Fatal(err)
		}
		if cm := convPush(kate, wire.OpType_joined); cm.GetInitBy() != id("Tom") {
			t.Fatalf("joined = %v", cm)
		}
		for _, c := range []*lcclient.Client{jerry, kate} {
			if cm := convPush(c, wire.OpType_members_joined); !slices.Equal(cm.GetM(), []string{id("Kate")}) || cm.GetInitBy() != id("Tom") {
				t.Fatalf("%s members_joined = %v", c.ClientID, cm)
			}
		}
		if _, err := convRequest(ctx, tom, wire.OpType_remove, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("Kate")}}); err != nil {
			t.Fatal(err)
		}
		if cm := convPush(kate, wire.OpType_left); cm.GetInitBy() != id("Tom") {
			t.Fatalf("left = %v", cm)
		}
		if cm := convPush(jerry, wire.OpType_members_left); !slices.Equal(cm.GetM(), []string{id("Kate")}) || cm.GetInitBy() != id("Tom") {
			t.Fatalf("members_left = %v", cm)
		}
		noMore(t, kate, wire.CommandType_conv, "a removed member gets no members_left")
		// Kate no longer receives messages.
		if _, err := tom.SendText(ctx, cid, "after kick"); err != nil {
			t.Fatal(err)
		}
		noMore(t, kate, wire.CommandType_direct, "removed member")
	}, nil)
}

func TestCreatorMayChangePolicy(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"), id("Kate"))
		_, err := convRequest(ctx, jerry, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("Spike")}})
		wantCode(t, err, realtime.CodeConvNotAllowed, "non-creator add")
		_, err = convRequest(ctx, jerry, wire.OpType_remove, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("Kate")}})
		wantCode(t, err, realtime.CodeConvNotAllowed, "non-creator remove")
		if _, err := convRequest(ctx, tom, wire.OpType_add, &wire.ConvCommand{Cid: proto.String(cid), M: []string{id("Spike")}}); err != nil {
			t.Fatalf("creator add: %v", err)
		}
		// Anyone may leave.
		if _, err := convRequest(ctx, jerry, wire.OpType_remove, &wire.ConvCommand{Cid: proto.String(cid)}); err != nil {
			t.Fatalf("leave: %v", err)
		}
		res, err := convRequest(ctx, tom, wire.OpType_members, &wire.ConvCommand{Cid: proto.String(cid)})
		if err != nil || !slices.Equal(res.GetConvMessage().GetM(), []string{id("Kate"), id("Spike"), id("Tom")}) {
			t.Fatalf("members = %v, %v", res, err)
		}
	}, &hub.Config{MemberChange: hub.CreatorMayChange})
}

func TestUnreadOnLoginMentionsAndReadClearsOtherDevices(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"), id("Kate"))
		tom.SendText(ctx, cid, "one")
		tom.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(text("@Jerry")), MentionPids: []string{id("Jerry")}})
		last, _ := tom.SendText(ctx, cid, "three")
		jerry := srv.Login(t, id("Jerry"))
		p, err := jerry.NextOf(ctx, wire.CommandType_unread)
		if err != nil {
			t.Fatal(err)
		}
		u := p.GetUnreadMessage().GetConvs()
		if len(u) != 1 || u[0].GetCid() != cid || u[0].GetUnread() != 3 || !u[0].GetMentioned() || u[0].GetMid() != last.ID || u[0].GetData() != text("three") || u[0].GetFrom() != id("Tom") {
			t.Fatalf("unread = %v", u)
		}
		kate := srv.Login(t, id("Kate"))
		p, _ = kate.NextOf(ctx, wire.CommandType_unread)
		if u := p.GetUnreadMessage().GetConvs(); len(u) != 1 || u[0].GetMentioned() {
			t.Fatalf("Kate's unread = %v (not mentioned)", u)
		}
		// A second device of Jerry; reading on one clears the other.
		jerry2 := srv.Login(t, id("Jerry"), lcclient.Base64())
		if _, err := jerry2.NextOf(ctx, wire.CommandType_unread); err != nil {
			t.Fatal(err)
		}
		if err := jerry.Read(ctx, cid, 0); err != nil {
			t.Fatal(err)
		}
		p, err = jerry2.NextOf(ctx, wire.CommandType_unread)
		if err != nil || p.GetUnreadMessage().GetConvs()[0].GetUnread() != 0 {
			t.Fatalf("other device's unread after read: %v, %v", p, err)
		}
		jerry3 := srv.Login(t, id("Jerry"))
		noMore(t, jerry3, wire.CommandType_unread, "after read() nothing is unread")
	}, nil)
}

// The SDK's getQuery() without conditions sends where "{}": it finds only
// the client's own conversations (LeanCloud's default condition).
func TestEmptyWhereFindsOwnConversations(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		william := srv.Login(t, id("William"))
		if _, err := tom.StartConversation(ctx, id("Jerry")); err != nil {
			t.Fatal(err)
		}
		for _, where := range []string{"{}", " { } "} {
			res := queryConvs(t, ctx, william, &wire.ConvCommand{Where: &wire.JsonObjectMessage{Data: proto.String(where)}})
			if len(res) != 0 {
				t.Fatalf("where %q found %d conversations of others", where, len(res))
			}
			if res := queryConvs(t, ctx, tom, &wire.ConvCommand{Where: &wire.JsonObjectMessage{Data: proto.String(where)}}); len(res) != 1 {
				t.Fatalf("where %q: Tom finds %d conversations, want his 1", where, len(res))
			}
		}
	}, nil)
}

package hub_test

import (
	"encoding/json"
	"errors"
	"fmt"
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

// The where, sort and flag forms the JS SDK's ConversationQuery sends
// (sdk-ops-spec A.5), through real websockets, on every backend.
// The forms run with private groups (VisibleToMembers), where what a
// client sees is its own conversations, chat rooms and system
// conversations; VisibleToAll is covered by TestConversationQueryForms.
func TestConversationQuerySDKForms(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		jerry := srv.Login(t, id("Jerry"))
		Tom, Jerry, Kate := id("Tom"), id("Jerry"), id("Kate")
		// createConversation({members, name, ...custom}) puts name and the
		// custom properties at the top level of attr.
		start := func(members []string, attr map[string]any, transient bool) string {
			t.Helper()
			b, _ := json.Marshal(attr)
			cid, err := tom.StartConversationWith(ctx, &wire.ConvCommand{M: members,
				Attr: &wire.JsonObjectMessage{Data: proto.String(string(b))}, Transient: proto.Bool(transient)})
			if err != nil {
				t.Fatal(err)
			}
			return cid
		}
		a := start([]string{Jerry, Tom}, map[string]any{"name": "Tom & Jerry (1)", "type": "private", "rank": 2}, false)
		b := start([]string{Jerry, Kate, Tom}, map[string]any{"name": "party", "type": "public", "rank": 10}, false)
		c := start([]string{Kate, Tom}, map[string]any{"name": "quiet", "type": "private", "rank": 5}, false)
		d, err := jerry.StartConversationWith(ctx, &wire.ConvCommand{M: []string{Kate, Jerry},
			Attr: &wire.JsonObjectMessage{Data: proto.String(`{"name":"no tom","type":"private"}`)}})
		if err != nil {
			t.Fatal(err)
		}
		room := start([]string{Tom}, map[string]any{"name": "room", "tag": id("tag")}, true)
		// conversation.set('attr.level', 3); save()
		if _, err := convRequest(ctx, tom, wire.OpType_update, &wire.ConvCommand{Cid: proto.String(c),
			Attr: &wire.JsonObjectMessage{Data: proto.String(`{"attr.level":3}`)}}); err != nil {
			t.Fatal(err)
		}
		first, err := tom.SendText(ctx, a, "first")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		between := time.UnixMilli(first.Timestamp + 2)
		time.Sleep(5 * time.Millisecond)
		if _, err := tom.SendText(ctx, b, "second"); err != nil {
			t.Fatal(err)
		}

		js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
		date := func(tm time.Time) map[string]any {
			return map[string]any{"__type": "Date", "iso": tm.UTC().Format("2006-01-02T15:04:05.000Z")}
		}
		find := func(who *lcclient.Client, where any, sort string, flag int32, limit, skip int32) []map[string]any {
			t.Helper()
			cm := &wire.ConvCommand{Flag: proto.Int32(flag)}
			if where != nil {
				cm.Where = &wire.JsonObjectMessage{Data: proto.String(js(where))}
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
			return queryConvs(t, ctx, who, cm)
		}
		T, J := tom, jerry
		check := func(what string, got []map[string]any, want ...string) {
			t.Helper()
			if g := ids(got); !slices.Equal(g, want) {
				t.Errorf("%s = %v, want %v", what, g, want)
			}
		}
		sorted := func(got []map[string]any) []map[string]any {
			slices.SortFunc(got, func(x, y map[string]any) int { return strings.Compare(x["objectId"].(string), y["objectId"].(string)) })
			return got
		}
		set := func(ids ...string) []string { return slices.Sorted(slices.Values(ids)) }
		checkSet := func(what string, got []map[string]any, want ...string) {
			t.Helper()
			check(what, sorted(got), set(want...)...)
		}

		checkSet("getQuery().find()", find(T, map[string]any{}, "", 0, 0, 0), a, b, c)
		check("equalTo('name')", find(T, map[string]any{"name": "party"}, "", 0, 0, 0), b)
		checkSet("equalTo('attr.type')", find(T, map[string]any{"attr.type": "private"}, "", 0, 0, 0), a, c)
		checkSet("equalTo('type')", find(T, map[string]any{"type": "private"}, "", 0, 0, 0), a, c)
		check("equalTo('attr.level') after set('attr.level')", find(T, map[string]any{"attr.level": 3}, "", 0, 0, 0), c)
		check("contains('name')", find(T, map[string]any{"name": map[string]any{"$regex": `\QTom & Jerry (\E`}}, "", 0, 0, 0), a)
		check("startsWith('name')", find(T, map[string]any{"name": map[string]any{"$regex": `^\Qqu\E`}}, "", 0, 0, 0), c)
		check("matches('name', /PARTY/i)", find(T, map[string]any{"name": map[string]any{"$regex": "PARTY", "$options": "i"}}, "", 0, 0, 0), b)
		check("greaterThan('lm')", find(T, map[string]any{"lm": map[string]any{"$gt": date(between)}}, "", 0, 0, 0), b)
		checkSet("lessThan('lm')", find(T, map[string]any{"lm": map[string]any{"$lt": date(between)}}, "", 0, 0, 0), a, c)
		checkSet("containsMembers([Jerry])", find(T, map[string]any{"m": map[string]any{"$all": []string{Jerry}}}, "", 0, 0, 0), a, b)
		check("withMembers([Jerry], true)", find(T, map[string]any{"m": map[string]any{"$size": 2, "$all": []string{Jerry, Tom}}}, "", 0, 0, 0), a)
		checkSet("containedIn('attr.rank')", find(T, map[string]any{"attr.rank": map[string]any{"$in": []int{2, 10}}}, "", 0, 0, 0), a, b)
		checkSet("notEqualTo('type')", find(T, map[string]any{"type": map[string]any{"$ne": "private"}}, "", 0, 0, 0), b)
		checkSet("ConversationQuery.or", find(T, map[string]any{"$or": []any{
			map[string]any{"name": "party"}, map[string]any{"attr.level": map[string]any{"$exists": true}}}}, "", 0, 0, 0), b, c)
		check("ConversationQuery.and", find(T, map[string]any{"$and": []any{
			map[string]any{"attr.type": "private"}, map[string]any{"attr.rank": map[string]any{"$gt": 3}}}}, "", 0, 0, 0), c)
		check("descending('attr.rank')", find(T, map[string]any{}, "-attr.rank", 0, 0, 0), b, c, a)
		check("ascending('rank')", find(T, map[string]any{}, "rank", 0, 0, 0), a, c, b)
		check("addAscending: type, -rank", find(T, map[string]any{}, "type,-rank", 0, 0, 0), c, a, b)
		check("limit and skip", find(T, map[string]any{}, "rank", 0, 1, 1), c)
		check("default sort -lm", find(T, map[string]any{}, "", 0, 0, 0), b, a, c)
		// Chat rooms are visible to non-members; others' conversations are not.
		check("getChatRoomQuery()", find(J, map[string]any{"tr": true, "attr.tag": id("tag")}, "", 0, 0, 0), room)
		checkSet("Jerry's private conversations", find(J, map[string]any{"type": "private"}, "", 0, 0, 0), a, d)
		checkSet("Tom asking for Kate's", find(T, map[string]any{"m": Kate}, "", 0, 0, 0), b, c)

		// Results: custom attributes at the top level; compact leaves m out.
		res := find(T, map[string]any{"objectId": c}, "", 0, 0, 0)
		if len(res) != 1 || res[0]["type"] != "private" || res[0]["rank"] != 5.0 || res[0]["level"] != 3.0 || res[0]["name"] != "quiet" || res[0]["m"] == nil {
			t.Errorf("result row = %v", res)
		}
		res = find(T, map[string]any{"objectId": b}, "", 3, 0, 0) // compact | withLastMessagesRefreshed
		if len(res) != 1 || res[0]["m"] != nil || res[0]["msg"] == nil {
			t.Errorf("compact row with last message = %v", res)
		}
	}, &hub.Config{ConversationVisibility: hub.VisibleToMembers})
}

// TestConversationQueryRefusals: anything the query language does not have
// or that is over its limits is answered with 4310 and a reason, and the
// session goes on.
func TestConversationQueryRefusals(t *testing.T) {
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		cid, err := tom.StartConversation(ctx, id("Jerry"))
		if err != nil {
			t.Fatal(err)
		}
		wide := `{"$or":[` + strings.TrimSuffix(strings.Repeat(`{"attr.k":1},`, 60), ",") + `]}`
		for _, tt := range []struct{ where, sort, reason string }{
			// The attack that cost the old parser a second and 300 MB: 60 KB
			// of nested $and in one frame.
			{where: strings.Repeat(`{"$and":[`, 5000) + `{"name":"x"}` + strings.Repeat(`]}`, 5000), reason: "deeper than 8"},
			{where: wide, reason: "more than 100 terms"},
			{where: `{"name":{"$regex":"a","$options":"x"}}`, reason: `unsupported $options "x"`},
			{where: `{"name":{"$regex":"(a"}}`, reason: "invalid $regex"},
			{where: `{"name":{"$regex":"` + strings.Repeat("a", 300) + `"}}`, reason: "longer than 256 bytes"},
			{where: `{"m":{"$gt":"a"}}`, reason: "m does not take $gt"},
			{where: `{"lm":{"$gt":"yesterday"}}`, reason: "lm $gt takes a date"},
			{where: `{"attr.a') OR 1=1 --":1}`, reason: "invalid custom attribute key"},
			{where: `{"$where":"sleep(1)"}`, reason: "unsupported operator"},
			{where: `[1]`, reason: "must be a JSON object"},
			{where: `{}`, sort: "m", reason: "cannot sort by m"},
			{where: `{}`, sort: "name; DROP TABLE conversations", reason: "unknown sort field"},
		} {
			cm := &wire.ConvCommand{Where: &wire.JsonObjectMessage{Data: proto.String(tt.where)}}
			if tt.sort != "" {
				cm.Sort = proto.String(tt.sort)
			}
			_, err := convRequest(ctx, tom, wire.OpType_query, cm)
			var e *realtime.Error
			if !errors.As(err, &e) || e.Code != realtime.CodeConvQueryFailed || !strings.Contains(e.Detail, tt.reason) {
				t.Errorf("where %.60s sort %q: %v, want 4310 with %q", tt.where, tt.sort, err, tt.reason)
			}
		}
		got := queryConvs(t, ctx, tom, &wire.ConvCommand{Where: &wire.JsonObjectMessage{Data: proto.String(fmt.Sprintf(`{"objectId":%q}`, cid))}})
		if len(got) != 1 {
			t.Fatalf("a query after the refusals = %v", got)
		}
	}, nil)
}

// Package storetest is the conformance suite of realtime.Store and
// realtime.DeviceStore. Every implementation runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) realtime.Store { return newEmptyStore(t) })
//	}
//
// newStore must return a new, empty store for each call; subtests run in
// parallel, each on its own store, and Run closes each store when its
// subtest ends (Close must tolerate a second call if newStore registers one
// too). The suite checks the documented contract of the interfaces, so a
// store passes only with the limits of the contract's defaults (a 5 KiB
// message body limit).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leanhub/realtime"
)

// MaxMessageSize is the body limit the suite expects (the stores' default).
const MaxMessageSize = 5 << 10

// Run runs the Store conformance suite.
func Run(t *testing.T, newStore func(t *testing.T) realtime.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s realtime.Store)
	}{
		{"CreateConversation", testCreate},
		{"CreateUniqueRace", testCreateUniqueRace},
		{"GetConversation", testGet},
		{"QueryConversations", testQuery},
		{"QueryWhere", testQueryWhere},
		{"QuerySort", testQuerySort},
		{"QueryHandBuilt", testQueryHandBuilt},
		{"QueryRegex", testQueryRegexSemantics},
		{"UpdateConversation", testUpdate},
		{"Members", testMembers},
		{"Append", testAppend},
		{"AppendErrors", testAppendErrors},
		{"AppendDuplicates", testAppendDuplicates},
		{"AppendConcurrent", testAppendConcurrent},
		{"AppendRetryRace", testAppendRetryRace},
		{"GetMessage", testGetMessage},
		{"History", testHistory},
		{"Patch", testPatch},
		{"PatchesSince", testPatchesSince},
		{"Cursors", testCursors},
		{"SystemMessages", testSystemMessages},
		{"Roles", testRoles},
		{"Silence", testSilence},
		{"Blacklist", testBlacklist},
		{"AddressedMessages", testAddressedMessages},
		{"ReceiptHistory", testReceiptHistory},
		{"Unread", testUnread},
		{"Wills", testWills},
		{"DeleteConversation", testDeleteConversation},
		{"DeleteMessage", testDeleteMessage},
		{"AppHistory", testAppHistory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

// tick lets the millisecond clock move, for checks that order messages or
// conversations of different conversations by time.
func tick() { time.Sleep(3 * time.Millisecond) }

func ctx(t *testing.T) context.Context { return t.Context() }

func create(t *testing.T, s realtime.Store, c *realtime.Conversation) *realtime.Conversation {
	t.Helper()
	conv, created, err := s.CreateConversation(ctx(t), c)
	if err != nil {
		t.Fatalf("CreateConversation: %v", err)
	}
	if !created {
		t.Fatalf("CreateConversation: created = false")
	}
	return conv
}

func group(t *testing.T, s realtime.Store, members ...string) *realtime.Conversation {
	t.Helper()
	return create(t, s, &realtime.Conversation{Creator: members[0], Members: members})
}

func send(t *testing.T, s realtime.Store, m *realtime.Message) *realtime.Message {
	t.Helper()
	res, err := s.AppendMessages(ctx(t), []*realtime.Message{m})
	if err != nil {
		t.Fatalf("AppendMessages: %v", err)
	}
	if len(res) != 1 {
		t.Fatalf("AppendMessages: %d results, want 1", len(res))
	}
	if res[0].Err != nil {
		t.Fatalf("AppendMessages: %v", res[0].Err)
	}
	return res[0].Message
}

func text(t *testing.T, s realtime.Store, conv, from, data string) *realtime.Message {
	t.Helper()
	return send(t, s, &realtime.Message{ConvID: conv, From: from, Data: data})
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
	var re *realtime.Error
	if !errors.As(err, &re) {
		t.Fatalf("%s: err %v is not a *realtime.Error", what, err)
	}
}

func history(t *testing.T, s realtime.Store, q realtime.HistoryQuery) []*realtime.Message {
	t.Helper()
	msgs, err := s.History(ctx(t), q)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	return msgs
}

func all(t *testing.T, s realtime.Store, conv string) []*realtime.Message {
	t.Helper()
	return history(t, s, realtime.HistoryQuery{ConvID: conv, Limit: 1000})
}

func isHexID(id string) bool {
	if len(id) != 24 {
		return false
	}
	return strings.Trim(id, "0123456789abcdef") == ""
}

func testCreate(t *testing.T, s realtime.Store) {
	c := create(t, s, &realtime.Conversation{Name: "g", Creator: "alice", Members: []string{"carol", "alice", "bob", "alice"},
		Attrs: []byte(`{"k":1}`), Muted: []string{"bob"}})
	if !isHexID(c.ID) {
		t.Errorf("ID = %q, want 24 lowercase hex digits", c.ID)
	}
	if !slices.Equal(c.Members, []string{"alice", "bob", "carol"}) {
		t.Errorf("Members = %v, want sorted and de-duplicated", c.Members)
	}
	if c.CreatedAt.IsZero() || c.UpdatedAt.IsZero() {
		t.Errorf("CreatedAt/UpdatedAt not set: %+v", c)
	}
	got, err := s.GetConversation(ctx(t), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "g" || got.Creator != "alice" || !slices.Equal(got.Members, c.Members) ||
		string(got.Attrs) != `{"k":1}` || !slices.Equal(got.Muted, []string{"bob"}) || got.Seq != 0 {
		t.Errorf("GetConversation = %+v", got)
	}

	// Unique: the same member set, in any order, returns the same one.
	u1, created, err := s.CreateConversation(ctx(t), &realtime.Conversation{Creator: "a", Members: []string{"a", "b"}, Unique: true})
	if err != nil || !created {
		t.Fatalf("unique create: %v %v", created, err)
	}
	u2, created, err := s.CreateConversation(ctx(t), &realtime.Conversation{Creator: "b", Members: []string{"b", "a", "b"}, Unique: true, Name: "other"})
	if err != nil || created || u2.ID != u1.ID {
		t.Fatalf("unique again: id %s created %v err %v, want %s false nil", u2.ID, created, err, u1.ID)
	}
	// Without Unique, a new conversation each time.
	n1 := group(t, s, "a", "b")
	if n1.ID == u1.ID {
		t.Errorf("non-unique create returned the unique conversation")
	}
	// A different set is another unique conversation.
	u3, created, err := s.CreateConversation(ctx(t), &realtime.Conversation{Members: []string{"a", "b", "c"}, Unique: true})
	if err != nil || !created || u3.ID == u1.ID {
		t.Fatalf("unique other set: %v %v", created, err)
	}

	// Transient chat rooms keep no members.
	room := create(t, s, &realtime.Conversation{Name: "room", Transient: true, Members: []string{"x"}})
	if room.Members != nil || !room.Transient {
		t.Errorf("transient: Members = %v Transient = %v", room.Members, room.Transient)
	}
	// Temporary conversations need an expiry.
	if _, _, err := s.CreateConversation(ctx(t), &realtime.Conversation{Temporary: true, Members: []string{"a"}}); err == nil {
		t.Errorf("temporary without ExpiresAt: no error")
	}
	tmp := create(t, s, &realtime.Conversation{Temporary: true, ExpiresAt: time.Now().Add(time.Hour), Members: []string{"a"}})
	if !tmp.Temporary || tmp.ExpiresAt.IsZero() {
		t.Errorf("temporary: %+v", tmp)
	}

	for _, bad := range [][]string{{""}, {"a", ""}, {strings.Repeat("x", 65)}, {"a\x00b"}, {"\xff"}} {
		_, _, err := s.CreateConversation(ctx(t), &realtime.Conversation{Members: bad})
		wantErr(t, fmt.Sprintf("members %q", bad), err, realtime.ErrInvalidMessage)
	}
	many := make([]string, 10001)
	for i := range many {
		many[i] = fmt.Sprintf("c%05d", i)
	}
	_, _, err = s.CreateConversation(ctx(t), &realtime.Conversation{Members: many})
	wantErr(t, "10001 members", err, realtime.ErrConvFull)
}

func testCreateUniqueRace(t *testing.T, s realtime.Store) {
	const n = 16
	ids := make([]string, n)
	createdCount := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, created, err := s.CreateConversation(context.Background(),
				&realtime.Conversation{Members: []string{"p", "q"}, Unique: true})
			if err != nil {
				t.Errorf("create: %v", err)
				return
			}
			mu.Lock()
			ids[i] = c.ID
			if created {
				createdCount++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if createdCount != 1 {
		t.Errorf("%d creations reported, want 1", createdCount)
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("racing unique creates returned different ids: %v", ids)
		}
	}
}

func testGet(t *testing.T, s realtime.Store) {
	for _, id := range []string{"", "xyz", "0123456789ABCDEF01234567", "0123456789abcdef01234567", "0123456789abcdef0123456g"} {
		_, err := s.GetConversation(ctx(t), id)
		wantErr(t, fmt.Sprintf("GetConversation(%q)", id), err, realtime.ErrConvNotFound)
	}
	c := group(t, s, "a", "b")
	got, err := s.GetConversation(ctx(t), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastMessage != nil {
		t.Errorf("LastMessage = %+v before any message", got.LastMessage)
	}
	m := text(t, s, c.ID, "a", "hi")
	got, err = s.GetConversation(ctx(t), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastMessage == nil || got.LastMessage.ID != m.ID || got.LastMessage.Data != "hi" || got.Seq != 1 {
		t.Errorf("after a message: LastMessage %+v Seq %d", got.LastMessage, got.Seq)
	}
	// An expired temporary conversation is gone.
	exp := create(t, s, &realtime.Conversation{Temporary: true, ExpiresAt: time.Now().Add(-time.Minute), Members: []string{"a"}})
	_, err = s.GetConversation(ctx(t), exp.ID)
	wantErr(t, "expired temporary", err, realtime.ErrConvNotFound)
}

func testQuery(t *testing.T, s realtime.Store) {
	c1 := create(t, s, &realtime.Conversation{Name: "b-one", Members: []string{"u1", "u2"}})
	tick()
	c2 := create(t, s, &realtime.Conversation{Name: "a-two", Members: []string{"u1", "u2", "u3"}, System: true})
	tick()
	c3 := create(t, s, &realtime.Conversation{Name: "c-three", Members: []string{"u2", "u3"}})
	room := create(t, s, &realtime.Conversation{Name: "room", Transient: true})
	tmp := create(t, s, &realtime.Conversation{Name: "tmp", Temporary: true, ExpiresAt: time.Now().Add(time.Hour), Members: []string{"u1"}})
	create(t, s, &realtime.Conversation{Name: "expired", Temporary: true, ExpiresAt: time.Now().Add(-time.Hour), Members: []string{"u1"}})
	tick()
	text(t, s, c1.ID, "u1", "first")
	tick()
	m3 := text(t, s, c3.ID, "u2", "newest")

	ids := func(cs []*realtime.Conversation) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = c.ID
		}
		return out
	}
	query := func(q realtime.ConversationQuery) []string {
		t.Helper()
		cs, err := s.QueryConversations(ctx(t), q)
		if err != nil {
			t.Fatalf("QueryConversations(%+v): %v", q, err)
		}
		return ids(cs)
	}
	setOf := func(ids ...string) []string { return slices.Sorted(slices.Values(ids)) }
	sorted := func(ids []string) []string { return slices.Sorted(slices.Values(ids)) }
	yes, no := true, false

	if got := sorted(query(realtime.ConversationQuery{Member: "u1", Limit: 100})); !slices.Equal(got, setOf(c1.ID, c2.ID, tmp.ID)) {
		t.Errorf("Member u1 = %v (expired temporary conversations must be left out)", got)
	}
	if got := sorted(query(realtime.ConversationQuery{IDs: []string{c1.ID, c3.ID, "bad", "0123456789abcdef01234567"}})); !slices.Equal(got, setOf(c1.ID, c3.ID)) {
		t.Errorf("IDs = %v", got)
	}
	if got := sorted(query(realtime.ConversationQuery{AllMembers: []string{"u2", "u3"}})); !slices.Equal(got, setOf(c2.ID, c3.ID)) {
		t.Errorf("AllMembers u2,u3 = %v", got)
	}
	if got := query(realtime.ConversationQuery{MemberCount: 3}); !slices.Equal(got, []string{c2.ID}) {
		t.Errorf("MemberCount 3 = %v", got)
	}
	if got := query(realtime.ConversationQuery{Transient: &yes}); !slices.Equal(got, []string{room.ID}) {
		t.Errorf("Transient = %v", got)
	}
	if got := query(realtime.ConversationQuery{System: &yes}); !slices.Equal(got, []string{c2.ID}) {
		t.Errorf("System = %v", got)
	}
	if got := query(realtime.ConversationQuery{Temporary: &yes}); !slices.Equal(got, []string{tmp.ID}) {
		t.Errorf("Temporary = %v", got)
	}
	if got := query(realtime.ConversationQuery{Temporary: &no, Transient: &no, System: &no}); !slices.Equal(sorted(got), setOf(c1.ID, c3.ID)) {
		t.Errorf("not temporary/transient/system = %v", got)
	}
	// Default sort: newest last message first.
	if got := query(realtime.ConversationQuery{Member: "u2"}); len(got) != 3 || got[0] != c3.ID || got[1] != c1.ID {
		t.Errorf("default sort (-lm) = %v, want %s, %s first", got, c3.ID, c1.ID)
	}
	if got := query(realtime.ConversationQuery{Member: "u2", Sort: "name"}); !slices.Equal(got, []string{c2.ID, c1.ID, c3.ID}) {
		t.Errorf("sort name = %v", got)
	}
	if got := query(realtime.ConversationQuery{Member: "u2", Sort: "-name"}); !slices.Equal(got, []string{c3.ID, c1.ID, c2.ID}) {
		t.Errorf("sort -name = %v", got)
	}
	if got := query(realtime.ConversationQuery{Member: "u2", Sort: "name", Limit: 1, Skip: 1}); !slices.Equal(got, []string{c1.ID}) {
		t.Errorf("limit 1 skip 1 = %v", got)
	}
	if got := query(realtime.ConversationQuery{Member: "u2", Sort: "createdAt"}); !slices.Equal(got, []string{c1.ID, c2.ID, c3.ID}) {
		t.Errorf("sort createdAt = %v", got)
	}
	cs, err := s.QueryConversations(ctx(t), realtime.ConversationQuery{IDs: []string{c3.ID}, WithLastMessage: true})
	if err != nil || len(cs) != 1 {
		t.Fatalf("WithLastMessage: %v %v", cs, err)
	}
	if cs[0].LastMessage == nil || cs[0].LastMessage.ID != m3.ID || !slices.Equal(cs[0].Members, []string{"u2", "u3"}) {
		t.Errorf("WithLastMessage: %+v", cs[0])
	}
	cs, err = s.QueryConversations(ctx(t), realtime.ConversationQuery{IDs: []string{c3.ID}})
	if err != nil || len(cs) != 1 || cs[0].LastMessage != nil {
		t.Errorf("without WithLastMessage: LastMessage filled or error %v", err)
	}
	// Default limit 10.
	for range 12 {
		group(t, s, "many")
	}
	if got := query(realtime.ConversationQuery{Member: "many"}); len(got) != 10 {
		t.Errorf("default limit: %d conversations, want 10", len(got))
	}
}

func testUpdate(t *testing.T, s realtime.Store) {
	c := create(t, s, &realtime.Conversation{Name: "old", Members: []string{"a"}, Attrs: []byte(`{"x":1,"y":2}`)})
	name := "new"
	u, err := s.UpdateConversation(ctx(t), realtime.ConversationUpdate{ID: c.ID, Name: &name, Attrs: []byte(`{"y":null,"z":"3"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "new" || string(u.Attrs) != `{"x":1,"z":"3"}` {
		t.Errorf("updated = name %q attrs %s", u.Name, u.Attrs)
	}
	got, _ := s.GetConversation(ctx(t), c.ID)
	if got.Name != "new" || string(got.Attrs) != `{"x":1,"z":"3"}` || got.UpdatedAt.Before(c.UpdatedAt) {
		t.Errorf("after update: %+v", got)
	}
	// Attrs only.
	u, err = s.UpdateConversation(ctx(t), realtime.ConversationUpdate{ID: c.ID, Attrs: []byte(`{"x":{"n":1}}`)})
	if err != nil || u.Name != "new" || string(u.Attrs) != `{"x":{"n":1},"z":"3"}` {
		t.Errorf("attrs only: %+v %v", u, err)
	}
	// Mute and unmute keep a sorted set and leave name and attributes.
	u, err = s.UpdateConversation(ctx(t), realtime.ConversationUpdate{ID: c.ID, Mute: []string{"b", "a", "b"}})
	if err != nil || !slices.Equal(u.Muted, []string{"a", "b"}) || u.Name != "new" {
		t.Errorf("mute: %v %v", u, err)
	}
	u, err = s.UpdateConversation(ctx(t), realtime.ConversationUpdate{ID: c.ID, Unmute: []string{"a", "zz"}})
	if err != nil || !slices.Equal(u.Muted, []string{"b"}) {
		t.Errorf("unmute: %v %v", u, err)
	}
	if got, _ := s.GetConversation(ctx(t), c.ID); !slices.Equal(got.Muted, []string{"b"}) || string(got.Attrs) != `{"x":{"n":1},"z":"3"}` {
		t.Errorf("after mute: %+v", got)
	}
	_, err = s.UpdateConversation(ctx(t), realtime.ConversationUpdate{ID: "0123456789abcdef01234567", Name: &name})
	wantErr(t, "unknown conversation", err, realtime.ErrConvNotFound)
	_, err = s.UpdateConversation(ctx(t), realtime.ConversationUpdate{ID: "", Name: &name})
	wantErr(t, "empty id", err, realtime.ErrConvNotFound)
}

func testMembers(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b")
	m1 := text(t, s, c.ID, "a", "before c joined")
	conv, added, err := s.AddMembers(ctx(t), c.ID, []string{"c", "b", "c", "d"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(added, []string{"c", "d"}) || !slices.Equal(conv.Members, []string{"a", "b", "c", "d"}) {
		t.Errorf("AddMembers: added %v members %v", added, conv.Members)
	}
	ms, err := s.Members(ctx(t), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 4 {
		t.Fatalf("Members = %+v", ms)
	}
	for _, m := range ms {
		if m.ClientID == "c" && (m.ReadAt != m1.Timestamp || m.DeliveredAt != m1.Timestamp) {
			t.Errorf("new member cursors = %+v, want at the newest message %d", m, m1.Timestamp)
		}
		if m.ConvID != c.ID || m.JoinedAt.IsZero() {
			t.Errorf("member %+v", m)
		}
	}
	// History before joining is not unread.
	if u := unread(t, s, "c"); len(u) != 0 {
		t.Errorf("unread of a new member = %+v", u)
	}
	conv, removed, err := s.RemoveMembers(ctx(t), c.ID, []string{"d", "zz", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"b", "d"}) || !slices.Equal(conv.Members, []string{"a", "c"}) {
		t.Errorf("RemoveMembers: removed %v members %v", removed, conv.Members)
	}
	res, err := s.AppendMessages(ctx(t), []*realtime.Message{{ConvID: c.ID, From: "b", Data: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "removed member appends", res[0].Err, realtime.ErrInvalidTarget)
	_, _, err = s.AddMembers(ctx(t), "0123456789abcdef01234567", []string{"a"})
	wantErr(t, "AddMembers unknown conversation", err, realtime.ErrConvNotFound)
	_, _, err = s.AddMembers(ctx(t), c.ID, []string{""})
	wantErr(t, "AddMembers empty id", err, realtime.ErrInvalidMessage)
	_, _, err = s.RemoveMembers(ctx(t), "nope", []string{"a"})
	wantErr(t, "RemoveMembers malformed id", err, realtime.ErrConvNotFound)
	_, err = s.Members(ctx(t), "0123456789abcdef01234567")
	wantErr(t, "Members unknown conversation", err, realtime.ErrConvNotFound)
}

func testAppend(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b")
	d := group(t, s, "a", "c")
	res, err := s.AppendMessages(ctx(t), []*realtime.Message{
		{ConvID: c.ID, From: "a", Data: "1", ClientMsgID: "dt1", Receipt: true},
		{ConvID: d.ID, From: "c", Data: "d1", MentionPids: []string{"a"}},
		{ConvID: c.ID, From: "b", Binary: []byte{0, 1, 2}},
		{ConvID: c.ID, From: "a", Data: `{"_lctype":-1,"_lctext":"hi"}`, MentionAll: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	var prev *realtime.Message
	for i, r := range res {
		if r.Err != nil || r.Duplicate || r.Message == nil {
			t.Fatalf("result %d: %+v", i, r)
		}
		if r.Message.ID == "" {
			t.Errorf("result %d: no ID", i)
		}
	}
	for _, i := range []int{0, 2, 3} {
		m := res[i].Message
		if prev != nil && (m.Seq != prev.Seq+1 || m.Timestamp <= prev.Timestamp) {
			t.Errorf("seq/ts: %d/%d after %d/%d", m.Seq, m.Timestamp, prev.Seq, prev.Timestamp)
		}
		prev = m
	}
	if res[0].Message.Seq != 1 || res[1].Message.Seq != 1 || res[3].Message.Seq != 3 {
		t.Errorf("seqs = %d %d %d %d", res[0].Message.Seq, res[1].Message.Seq, res[2].Message.Seq, res[3].Message.Seq)
	}
	got := all(t, s, c.ID)
	if len(got) != 3 {
		t.Fatalf("history: %d messages", len(got))
	}
	if got[0].ClientMsgID != "dt1" || !got[0].Receipt || got[0].From != "a" || got[0].Data != "1" {
		t.Errorf("stored message 1 = %+v", got[0])
	}
	if string(got[1].Binary) != "\x00\x01\x02" || got[1].Data != "" {
		t.Errorf("binary message = %+v", got[1])
	}
	if !got[2].MentionAll || got[2].Data != `{"_lctype":-1,"_lctext":"hi"}` {
		t.Errorf("typed message = %+v", got[2])
	}
	for i := range got {
		if got[i].ID != res[[]int{0, 2, 3}[i]].Message.ID || got[i].Timestamp != res[[]int{0, 2, 3}[i]].Message.Timestamp {
			t.Errorf("history[%d] = %+v, want result", i, got[i])
		}
	}
	dm := all(t, s, d.ID)
	if len(dm) != 1 || !slices.Equal(dm[0].MentionPids, []string{"a"}) {
		t.Errorf("mentions not stored: %+v", dm)
	}
	conv, _ := s.GetConversation(ctx(t), c.ID)
	if conv.Seq != 3 || conv.LastMessage == nil || conv.LastMessage.ID != res[3].Message.ID {
		t.Errorf("conversation after append: Seq %d Last %+v", conv.Seq, conv.LastMessage)
	}
	// The sender's cursors are at its own newest message.
	ms, _ := s.Members(ctx(t), c.ID)
	for _, m := range ms {
		switch m.ClientID {
		case "a":
			if m.ReadAt != res[3].Message.Timestamp || m.DeliveredAt != res[3].Message.Timestamp || m.ReadMessageID != res[3].Message.ID {
				t.Errorf("sender cursors = %+v, want at %d", m, res[3].Message.Timestamp)
			}
		case "b":
			if m.ReadAt != res[2].Message.Timestamp {
				t.Errorf("b's read cursor = %d, want its own message %d", m.ReadAt, res[2].Message.Timestamp)
			}
		}
	}
	// A chat room takes messages from anyone, without membership.
	room := create(t, s, &realtime.Conversation{Transient: true, Name: "room"})
	rm := text(t, s, room.ID, "stranger", "hello room")
	if rm.Seq != 1 || rm.ID == "" {
		t.Errorf("chat room message = %+v", rm)
	}
	// The size limit: exactly the limit passes.
	text(t, s, c.ID, "a", strings.Repeat("x", MaxMessageSize))
	send(t, s, &realtime.Message{ConvID: c.ID, From: "a", Binary: make([]byte, MaxMessageSize)})
	// The caller's message is not modified.
	in := &realtime.Message{ConvID: c.ID, From: "a", Data: "mine"}
	send(t, s, in)
	if in.ID != "" || in.Seq != 0 || in.Timestamp != 0 {
		t.Errorf("input message modified: %+v", in)
	}
	if res, err := s.AppendMessages(ctx(t), nil); err != nil || len(res) != 0 {
		t.Errorf("empty append: %v %v", res, err)
	}
}

func testAppendErrors(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b")
	ok1 := &realtime.Message{ConvID: c.ID, From: "a", Data: "ok1"}
	ok2 := &realtime.Message{ConvID: c.ID, From: "b", Data: "ok2"}
	cases := []struct {
		name string
		msg  *realtime.Message
		want error
	}{
		{"non-member", &realtime.Message{ConvID: c.ID, From: "mallory", Data: "x"}, realtime.ErrInvalidTarget},
		{"unknown conversation", &realtime.Message{ConvID: "0123456789abcdef01234567", From: "a", Data: "x"}, realtime.ErrConvNotFound},
		{"malformed conversation", &realtime.Message{ConvID: "not-an-id", From: "a", Data: "x"}, realtime.ErrConvNotFound},
		{"empty conversation", &realtime.Message{From: "a", Data: "x"}, realtime.ErrConvNotFound},
		{"oversize text", &realtime.Message{ConvID: c.ID, From: "a", Data: strings.Repeat("x", MaxMessageSize+1)}, realtime.ErrMessageTooLarge},
		{"oversize binary", &realtime.Message{ConvID: c.ID, From: "a", Binary: make([]byte, MaxMessageSize+1)}, realtime.ErrMessageTooLarge},
		{"oversize text+binary", &realtime.Message{ConvID: c.ID, From: "a", Data: "xx", Binary: make([]byte, MaxMessageSize-1)}, realtime.ErrMessageTooLarge},
		{"empty sender", &realtime.Message{ConvID: c.ID, Data: "x"}, realtime.ErrInvalidMessage},
		{"malformed sender", &realtime.Message{ConvID: c.ID, From: "a\x00", Data: "x"}, realtime.ErrInvalidMessage},
	}
	msgs := []*realtime.Message{ok1}
	for _, tc := range cases {
		msgs = append(msgs, tc.msg)
	}
	msgs = append(msgs, ok2)
	res, err := s.AppendMessages(ctx(t), msgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(msgs) {
		t.Fatalf("%d results for %d messages", len(res), len(msgs))
	}
	for i, tc := range cases {
		r := res[i+1]
		if r.Message != nil {
			t.Errorf("%s: Message = %+v, want nil", tc.name, r.Message)
		}
		wantErr(t, tc.name, r.Err, tc.want)
	}
	if res[0].Err != nil || res[len(res)-1].Err != nil {
		t.Fatalf("valid messages failed: %v %v", res[0].Err, res[len(res)-1].Err)
	}
	if res[0].Message.Seq != 1 || res[len(res)-1].Message.Seq != 2 {
		t.Errorf("a failed message took a seq: %d %d", res[0].Message.Seq, res[len(res)-1].Message.Seq)
	}
	got := all(t, s, c.ID)
	if len(got) != 2 || got[0].Data != "ok1" || got[1].Data != "ok2" {
		t.Errorf("stored %d messages, want only the 2 valid ones", len(got))
	}
	// Each failure alone.
	for _, tc := range cases {
		res, err := s.AppendMessages(ctx(t), []*realtime.Message{tc.msg})
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, tc.name+" alone", res[0].Err, tc.want)
	}
	if got := all(t, s, c.ID); len(got) != 2 {
		t.Errorf("failed appends wrote %d messages", len(got)-2)
	}
	conv, _ := s.GetConversation(ctx(t), c.ID)
	if conv.Seq != 2 {
		t.Errorf("Seq = %d after failures, want 2", conv.Seq)
	}
}

func testAppendDuplicates(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b")
	first := send(t, s, &realtime.Message{ConvID: c.ID, From: "a", Data: "v1", ClientMsgID: "dt-1"})
	res, err := s.AppendMessages(ctx(t), []*realtime.Message{
		{ConvID: c.ID, From: "a", Data: "v1 retried", ClientMsgID: "dt-1"},
		{ConvID: c.ID, From: "b", Data: "same dt other sender", ClientMsgID: "dt-1"},
		{ConvID: c.ID, From: "b", Data: "twice in one call", ClientMsgID: "dt-2"},
		{ConvID: c.ID, From: "b", Data: "twice in one call (retry)", ClientMsgID: "dt-2"},
		{ConvID: c.ID, From: "a", Data: "no dt"},
		{ConvID: c.ID, From: "a", Data: "no dt"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Duplicate || res[0].Message.ID != first.ID || res[0].Message.Data != "v1" || res[0].Message.Timestamp != first.Timestamp || res[0].Message.Seq != 1 {
		t.Errorf("retry: %+v dup %v, want the first copy", res[0].Message, res[0].Duplicate)
	}
	if res[1].Duplicate || res[1].Message.Seq != 2 {
		t.Errorf("other sender's dt: %+v dup %v", res[1].Message, res[1].Duplicate)
	}
	if res[2].Duplicate || !res[3].Duplicate || res[3].Message.ID != res[2].Message.ID || res[3].Message.Data != "twice in one call" {
		t.Errorf("in-call duplicate: %+v / %+v dup %v", res[2].Message, res[3].Message, res[3].Duplicate)
	}
	if res[4].Duplicate || res[5].Duplicate || res[4].Message.ID == res[5].Message.ID {
		t.Errorf("messages without a ClientMsgID are never duplicates")
	}
	got := all(t, s, c.ID)
	if len(got) != 5 {
		t.Errorf("stored %d messages, want 5", len(got))
	}
	for i, m := range got {
		if m.Seq != int64(i+1) {
			t.Errorf("seq %d at position %d: duplicates must not take a seq", m.Seq, i)
		}
	}
	// A failed message does not block a later retry.
	res, _ = s.AppendMessages(ctx(t), []*realtime.Message{{ConvID: c.ID, From: "z", Data: "x", ClientMsgID: "dt-z"}})
	wantErr(t, "non-member", res[0].Err, realtime.ErrInvalidTarget)
	if _, _, err := s.AddMembers(ctx(t), c.ID, []string{"z"}); err != nil {
		t.Fatal(err)
	}
	m := send(t, s, &realtime.Message{ConvID: c.ID, From: "z", Data: "x", ClientMsgID: "dt-z"})
	if m.Seq != 6 {
		t.Errorf("retry after failure: seq %d", m.Seq)
	}
}

func testAppendConcurrent(t *testing.T, s realtime.Store) {
	const senders, each = 64, 8
	members := make([]string, senders)
	for i := range members {
		members[i] = fmt.Sprintf("s%02d", i)
	}
	c := group(t, s, members...)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]int64{}
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				res, err := s.AppendMessages(context.Background(), []*realtime.Message{{
					ConvID: c.ID, From: members[i], Data: fmt.Sprintf("%d/%d", i, j), ClientMsgID: fmt.Sprintf("dt-%d", j)}})
				if err != nil || res[0].Err != nil || res[0].Duplicate {
					t.Errorf("append: %v %+v", err, res)
					return
				}
				mu.Lock()
				if _, dup := ids[res[0].Message.ID]; dup {
					t.Errorf("id %s returned twice", res[0].Message.ID)
				}
				ids[res[0].Message.ID] = res[0].Message.Seq
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	got := all(t, s, c.ID)
	if len(got) != senders*each {
		t.Fatalf("stored %d messages, want %d", len(got), senders*each)
	}
	seen := map[string]bool{}
	for i, m := range got {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d has seq %d: not gap-free", i, m.Seq)
		}
		if i > 0 && m.Timestamp <= got[i-1].Timestamp {
			t.Fatalf("timestamps not strictly increasing: %d after %d", m.Timestamp, got[i-1].Timestamp)
		}
		if seen[m.Data] {
			t.Fatalf("body %q stored twice", m.Data)
		}
		seen[m.Data] = true
		if ids[m.ID] != m.Seq {
			t.Fatalf("stored %s with seq %d, the caller got %d", m.ID, m.Seq, ids[m.ID])
		}
	}
	conv, _ := s.GetConversation(ctx(t), c.ID)
	if conv.Seq != senders*each || conv.LastMessage.ID != got[len(got)-1].ID {
		t.Errorf("conversation head: Seq %d Last %s", conv.Seq, conv.LastMessage.ID)
	}
}

func testAppendRetryRace(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b")
	const n = 32
	var wg sync.WaitGroup
	results := make([]realtime.AppendResult, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.AppendMessages(context.Background(), []*realtime.Message{{ConvID: c.ID, From: "a", Data: "once", ClientMsgID: "retried"}})
			if err != nil {
				t.Errorf("append: %v", err)
				return
			}
			results[i] = res[0]
		}()
	}
	wg.Wait()
	fresh := 0
	for _, r := range results {
		if r.Err != nil || r.Message == nil {
			t.Fatalf("result %+v", r)
		}
		if !r.Duplicate {
			fresh++
		}
		if r.Message.ID != results[0].Message.ID || r.Message.Seq != 1 {
			t.Fatalf("racing retries got different messages: %s seq %d vs %s", r.Message.ID, r.Message.Seq, results[0].Message.ID)
		}
	}
	if fresh != 1 {
		t.Errorf("%d results not marked Duplicate, want 1", fresh)
	}
	if got := all(t, s, c.ID); len(got) != 1 {
		t.Errorf("stored %d copies, want 1", len(got))
	}
}

func testGetMessage(t *testing.T, s realtime.Store) {
	c := group(t, s, "a")
	d := group(t, s, "a")
	m := text(t, s, c.ID, "a", "hello")
	got, err := s.GetMessage(ctx(t), c.ID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != m.ID || got.Data != "hello" || got.Timestamp != m.Timestamp || got.Seq != 1 || got.ConvID != c.ID || got.From != "a" {
		t.Errorf("GetMessage = %+v", got)
	}
	for _, tc := range []struct{ conv, id string }{{d.ID, m.ID}, {c.ID, "nope"}, {c.ID, ""}, {"", m.ID}, {"bad", m.ID}} {
		_, err := s.GetMessage(ctx(t), tc.conv, tc.id)
		wantErr(t, fmt.Sprintf("GetMessage(%q, %q)", tc.conv, tc.id), err, realtime.ErrMessageNotFound)
	}
}

func testHistory(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b")
	var ms []*realtime.Message
	for i := range 25 {
		data := fmt.Sprintf("m%02d", i)
		if i%5 == 0 {
			data = fmt.Sprintf(`{"_lctype":-2,"_lctext":"m%02d"}`, i)
		}
		ms = append(ms, text(t, s, c.ID, []string{"a", "b"}[i%2], data))
	}
	ts := func(i int) int64 { return ms[i].Timestamp }
	idsOf := func(msgs []*realtime.Message) []string {
		out := make([]string, len(msgs))
		for i, m := range msgs {
			out[i] = m.ID
		}
		return out
	}
	want := func(lo, hi int) []string { return idsOf(ms[lo:hi]) }
	cases := []struct {
		name string
		q    realtime.HistoryQuery
		want []string
	}{
		{"default: 20 newest", realtime.HistoryQuery{}, want(5, 25)},
		{"older limit 3", realtime.HistoryQuery{Limit: 3}, want(22, 25)},
		{"older before start", realtime.HistoryQuery{Start: ts(10), Limit: 3}, want(7, 10)},
		{"older start inclusive", realtime.HistoryQuery{Start: ts(10), StartInclusive: true, Limit: 3}, want(8, 11)},
		{"older with end", realtime.HistoryQuery{Start: ts(10), End: ts(6), Limit: 10}, want(7, 10)},
		{"older end inclusive", realtime.HistoryQuery{Start: ts(10), End: ts(6), EndInclusive: true, Limit: 10}, want(6, 10)},
		{"newer after start", realtime.HistoryQuery{Direction: realtime.Newer, Start: ts(10), Limit: 3}, want(11, 14)},
		{"newer start inclusive", realtime.HistoryQuery{Direction: realtime.Newer, Start: ts(10), StartInclusive: true, Limit: 3}, want(10, 13)},
		{"newer with end", realtime.HistoryQuery{Direction: realtime.Newer, Start: ts(10), End: ts(13), Limit: 10}, want(11, 13)},
		{"newer end inclusive", realtime.HistoryQuery{Direction: realtime.Newer, Start: ts(10), End: ts(13), EndInclusive: true, Limit: 10}, want(11, 14)},
		{"newer from the start", realtime.HistoryQuery{Direction: realtime.Newer, Limit: 2}, want(0, 2)},
		{"type filter", realtime.HistoryQuery{Type: -2, Limit: 100}, []string{ms[0].ID, ms[5].ID, ms[10].ID, ms[15].ID, ms[20].ID}},
		{"type filter older", realtime.HistoryQuery{Type: -2, Start: ts(15), Limit: 2}, []string{ms[5].ID, ms[10].ID}},
		{"no match", realtime.HistoryQuery{Type: 42}, []string{}},
	}
	for _, tc := range cases {
		tc.q.ConvID = c.ID
		got := idsOf(history(t, s, tc.q))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %d messages %v, want %d %v", tc.name, len(got), got, len(tc.want), tc.want)
		}
	}
	if got := history(t, s, realtime.HistoryQuery{ConvID: "0123456789abcdef01234567"}); len(got) != 0 {
		t.Errorf("unknown conversation: %d messages", len(got))
	}
	// A big limit is capped, not an error.
	if got := history(t, s, realtime.HistoryQuery{ConvID: c.ID, Limit: 5000}); len(got) != 25 {
		t.Errorf("limit 5000: %d messages", len(got))
	}
	// The type follows patches: an edit to a typed body, a recall to -127.
	if _, err := s.PatchMessage(ctx(t), realtime.Patch{ConvID: c.ID, MessageID: ms[1].ID, From: "b", Data: `{"_lctype":-2}`}); err != nil {
		t.Fatal(err)
	}
	if got := history(t, s, realtime.HistoryQuery{ConvID: c.ID, Type: -2, Limit: 100}); len(got) != 6 {
		t.Errorf("after an edit to type -2: %d typed messages, want 6", len(got))
	}
	if _, err := s.PatchMessage(ctx(t), realtime.Patch{ConvID: c.ID, MessageID: ms[0].ID, From: "a", Recall: true}); err != nil {
		t.Fatal(err)
	}
	if got := history(t, s, realtime.HistoryQuery{ConvID: c.ID, Type: -127}); len(got) != 1 || got[0].ID != ms[0].ID {
		t.Errorf("recalled type -127: %v", idsOf(got))
	}
}

func testPatch(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b")
	m1 := send(t, s, &realtime.Message{ConvID: c.ID, From: "a", Data: "typo", MentionPids: []string{"b"}})
	m2 := text(t, s, c.ID, "a", "last")

	p, err := s.PatchMessage(ctx(t), realtime.Patch{ConvID: c.ID, MessageID: m1.ID, From: "a", Data: "fixed", MentionAll: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Data != "fixed" || !p.MentionAll || len(p.MentionPids) != 0 || p.PatchTimestamp == 0 || p.Recalled ||
		p.ID != m1.ID || p.Timestamp != m1.Timestamp || p.Seq != m1.Seq {
		t.Errorf("edited = %+v", p)
	}
	got, _ := s.GetMessage(ctx(t), c.ID, m1.ID)
	if got.Data != "fixed" || got.PatchTimestamp != p.PatchTimestamp {
		t.Errorf("stored edit = %+v", got)
	}
	// Ownership.
	_, err = s.PatchMessage(ctx(t), realtime.Patch{ConvID: c.ID, MessageID: m1.ID, From: "b", Data: "hijack"})
	wantErr(t, "patch by another client", err, realtime.ErrMessageOwnership)
	sys, err := s.PatchMessage(ctx(t), realtime.Patch{ConvID: c.ID, MessageID: m1.ID, System: true, Data: "***",
		PatchCode: realtime.CodeKeywordFiltered, PatchReason: "keyword"})
	if err != nil {
		t.Fatal(err)
	}
	if sys.Data != "***" || sys.PatchCode != realtime.CodeKeywordFiltered || sys.PatchReason != "keyword" || sys.PatchTimestamp <= p.PatchTimestamp {
		t.Errorf("system edit = %+v", sys)
	}
	// Patch timestamps are strictly increasing per message, even with a
	// given Timestamp.
	fixed := sys.PatchTimestamp + 1000
	e1, err := s.PatchMessage(ctx(t), realtime.Patch{ConvID: c.ID, MessageID: m2.ID, From: "a", Data: "e1", Timestamp: fixed})
	if err != nil {
		t.Fatal(err)
	}
	e2, err := s.PatchMessage(ctx(t), realtime.Patch{ConvID: c.ID, MessageID: m2.ID, From: "a", Data: "e2", Timestamp: fixed})
	if err != nil {
		t.Fatal(err)
	}
	if e1.PatchTimestamp != fixed || e2.PatchTimestamp <= e1.PatchTimestamp {
		t.Errorf("patch timestamps %d then %d, want %d then greater", e1.PatchTimestamp, e2.PatchTimestamp, fixed)
	}
	// The conversation's last message follows the patch.
	conv, _ := s.GetConversation(ctx(t), c.ID)
	if conv.LastMessage == nil || conv.LastMessage.Data != "e2" || conv.LastMessage.PatchTimestamp != e2.PatchTimestamp {
		t.Errorf("last message after patch = %+v", conv.LastMessage)
	}
	// Recall.
	r, err := s.PatchMessage(ctx(t), realtime.Patch{ConvID: c.ID, MessageID: m1.ID, From: "a", Recall: true, Data: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Recalled || r.Data != realtime.RecalledBody || r.MentionAll || len(r.MentionPids) != 0 || len(r.Binary) != 0 || r.PatchTimestamp <= sys.PatchTimestamp {
		t.Errorf("recalled = %+v", r)
	}
	got, _ = s.GetMessage(ctx(t), c.ID, m1.ID)
	if !got.Recalled || got.Data != realtime.RecalledBody {
		t.Errorf("stored recall = %+v", got)
	}
	// Not found.
	d := group(t, s, "a")
	for _, tc := range []realtime.Patch{
		{ConvID: d.ID, MessageID: m1.ID, From: "a", Data: "x"},
		{ConvID: c.ID, MessageID: "nope", From: "a", Data: "x"},
		{ConvID: c.ID, MessageID: "", From: "a", Data: "x"},
		{ConvID: "", MessageID: m1.ID, From: "a", Data: "x"},
	} {
		_, err := s.PatchMessage(ctx(t), tc)
		wantErr(t, fmt.Sprintf("patch %+v", tc), err, realtime.ErrMessageNotFound)
	}
	_, err = s.PatchMessage(ctx(t), realtime.Patch{ConvID: c.ID, MessageID: m2.ID, From: "a", Data: strings.Repeat("x", MaxMessageSize+1)})
	wantErr(t, "oversize edit", err, realtime.ErrMessageTooLarge)
	got, _ = s.GetMessage(ctx(t), c.ID, m2.ID)
	if got.Data != "e2" {
		t.Errorf("a failed edit changed the message: %q", got.Data)
	}
}

func testPatchesSince(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b")
	other := group(t, s, "x")
	m1 := text(t, s, c.ID, "a", "1")
	m2 := text(t, s, c.ID, "a", "2")
	m3 := text(t, s, c.ID, "b", "3")
	ox := text(t, s, other.ID, "x", "elsewhere")
	if got, err := s.PatchesSince(ctx(t), "b", 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("no patches yet: %v %v", got, err)
	}
	patch := func(m *realtime.Message, from string, ts int64) *realtime.Message {
		t.Helper()
		p, err := s.PatchMessage(ctx(t), realtime.Patch{ConvID: m.ConvID, MessageID: m.ID, From: from, Data: "edited", Timestamp: ts})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := m3.Timestamp + 1000
	patch(m2, "a", base+1)
	patch(m1, "a", base+2)
	patch(ox, "x", base+3)
	patch(m3, "b", base+4)
	ids := func(msgs []*realtime.Message) []string {
		out := []string{}
		for _, m := range msgs {
			out = append(out, m.ID)
		}
		return out
	}
	got, err := s.PatchesSince(ctx(t), "b", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), []string{m2.ID, m1.ID, m3.ID}) {
		t.Errorf("PatchesSince(b, 0) = %v, want oldest patch first, own conversations only", ids(got))
	}
	if got[0].Data != "edited" || got[0].PatchTimestamp != base+1 {
		t.Errorf("patched message = %+v", got[0])
	}
	got, _ = s.PatchesSince(ctx(t), "b", base+1, 10)
	if !slices.Equal(ids(got), []string{m1.ID, m3.ID}) {
		t.Errorf("since %d = %v", base+1, ids(got))
	}
	got, _ = s.PatchesSince(ctx(t), "a", 0, 1)
	if !slices.Equal(ids(got), []string{m2.ID}) {
		t.Errorf("limit 1 = %v", ids(got))
	}
	got, _ = s.PatchesSince(ctx(t), "nobody", 0, 10)
	if len(got) != 0 {
		t.Errorf("non-member sees patches: %v", ids(got))
	}
}

func testCursors(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b")
	m1 := text(t, s, c.ID, "a", "1")
	m2 := text(t, s, c.ID, "a", "2")
	m3 := text(t, s, c.ID, "a", "3")
	member := func(id string) realtime.Member {
		t.Helper()
		ms, err := s.Members(ctx(t), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.ClientID == id {
				return m
			}
		}
		t.Fatalf("no member %s", id)
		return realtime.Member{}
	}
	update := func(cs ...realtime.Cursor) {
		t.Helper()
		if err := s.UpdateCursors(ctx(t), cs); err != nil {
			t.Fatalf("UpdateCursors(%+v): %v", cs, err)
		}
	}
	delivered := func(ts int64) realtime.Cursor {
		return realtime.Cursor{ConvID: c.ID, ClientID: "b", DeliveredAt: ts}
	}
	readAt := func(m *realtime.Message) realtime.Cursor {
		return realtime.Cursor{ConvID: c.ID, ClientID: "b", ReadSeq: m.Seq, ReadAt: m.Timestamp, ReadMessageID: m.ID}
	}
	update(delivered(m2.Timestamp))
	if got := member("b").DeliveredAt; got != m2.Timestamp {
		t.Errorf("DeliveredAt = %d, want %d", got, m2.Timestamp)
	}
	update(delivered(m1.Timestamp))
	if got := member("b").DeliveredAt; got != m2.Timestamp {
		t.Errorf("delivered cursor moved backwards to %d", got)
	}
	// Several moves of one cursor in one call: the furthest wins.
	update(delivered(m3.Timestamp), delivered(m1.Timestamp))
	if got := member("b").DeliveredAt; got != m3.Timestamp {
		t.Errorf("DeliveredAt after two moves = %d, want %d", got, m3.Timestamp)
	}
	// Non-members, unknown and malformed ids are ignored, and do not fail
	// the others of the same call.
	update(realtime.Cursor{ConvID: c.ID, ClientID: "zz", DeliveredAt: m3.Timestamp},
		realtime.Cursor{ConvID: "0123456789abcdef01234567", ClientID: "b", DeliveredAt: 1},
		realtime.Cursor{ConvID: "bad", ClientID: "b", DeliveredAt: 1},
		realtime.Cursor{ConvID: c.ID, ClientID: "", DeliveredAt: 1},
		readAt(m1))
	if m := member("b"); m.ReadAt != m1.Timestamp || m.ReadMessageID != m1.ID {
		t.Errorf("read cursor = %+v, want at m1", m)
	}
	if u := unread(t, s, "b"); len(u) != 1 || u[0].Unread != 2 {
		t.Errorf("unread after reading m1 = %+v, want 2", u)
	}
	update(readAt(m3))
	if m := member("b"); m.ReadAt != m3.Timestamp || m.ReadMessageID != m3.ID {
		t.Errorf("read cursor = %+v, want at m3", m)
	}
	if u := unread(t, s, "b"); len(u) != 0 {
		t.Errorf("unread after reading all = %+v", u)
	}
	update(readAt(m1))
	if m := member("b"); m.ReadAt != m3.Timestamp {
		t.Errorf("read cursor moved backwards: %+v", m)
	}
	// Reading also moves delivery.
	m4 := text(t, s, c.ID, "a", "4")
	update(readAt(m4))
	if m := member("b"); m.ReadAt != m4.Timestamp || m.DeliveredAt != m4.Timestamp {
		t.Errorf("after reading m4 = %+v, want read and delivered at %d", m, m4.Timestamp)
	}
	// Cursor moves and appends in flight together: both land.
	var wg sync.WaitGroup
	var m5 *realtime.Message
	wg.Add(2)
	go func() { defer wg.Done(); m5 = text(t, s, c.ID, "a", "5") }()
	go func() {
		defer wg.Done()
		update(realtime.Cursor{ConvID: c.ID, ClientID: "a", DeliveredAt: m4.Timestamp})
	}()
	wg.Wait()
	if u := unread(t, s, "b"); len(u) != 1 || u[0].Unread != 1 || u[0].Last.ID != m5.ID {
		t.Errorf("unread after m5 = %+v, want 1 (m5)", u)
	}
	if err := s.UpdateCursors(ctx(t), nil); err != nil {
		t.Errorf("UpdateCursors(nil) = %v", err)
	}
}

func testSystemMessages(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b")
	// A non-member's ordinary message is refused; as a system message it is
	// stored, and moves nobody's cursor.
	res, err := s.AppendMessages(ctx(t), []*realtime.Message{{ConvID: c.ID, From: "service", Data: "x"}})
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, realtime.ErrInvalidTarget) {
		t.Fatalf("non-member append = %+v %v, want ErrInvalidTarget", res, err)
	}
	m := send(t, s, &realtime.Message{ConvID: c.ID, From: "service", Data: "notice", System: true})
	if m.Seq != 1 {
		t.Errorf("system message seq = %d, want 1", m.Seq)
	}
	for _, id := range []string{"a", "b"} {
		if u := unread(t, s, id); len(u) != 1 || u[0].Unread != 1 || u[0].Last.ID != m.ID {
			t.Errorf("unread of %s = %+v, want the system message", id, u)
		}
	}
}

func testRoles(t *testing.T, s realtime.Store) {
	conv, _, err := s.CreateConversation(ctx(t), &realtime.Conversation{Creator: "a", Members: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetRole(ctx(t), conv.ID, "b", realtime.RoleManager); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetConversation(ctx(t), conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.RoleOf("a") != realtime.RoleOwner || got.RoleOf("b") != realtime.RoleManager || got.RoleOf("c") != realtime.RoleMember {
		t.Errorf("roles = %v (creator %s)", got.Roles, got.Creator)
	}
	ms, err := s.Members(ctx(t), conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]realtime.MemberRole{"a": realtime.RoleOwner, "b": realtime.RoleManager, "c": realtime.RoleMember}
	for _, m := range ms {
		if m.Role != want[m.ClientID] {
			t.Errorf("member %s role %q, want %q", m.ClientID, m.Role, want[m.ClientID])
		}
	}
	if err := s.SetRole(ctx(t), conv.ID, "zz", realtime.RoleManager); !errors.Is(err, realtime.ErrConvMembershipNeeded) {
		t.Errorf("role of a non-member: %v", err)
	}
	if err := s.SetRole(ctx(t), conv.ID, "c", realtime.RoleOwner); err == nil {
		t.Errorf("RoleOwner given")
	}
	if err := s.SetRole(ctx(t), conv.ID, "b", realtime.RoleMember); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetConversation(ctx(t), conv.ID); got.RoleOf("b") != realtime.RoleMember || len(got.Roles) != 0 {
		t.Errorf("after demotion: %v", got.Roles)
	}
	// A removed member's role goes with it.
	s.SetRole(ctx(t), conv.ID, "c", realtime.RoleManager)
	if _, _, err := s.RemoveMembers(ctx(t), conv.ID, []string{"c"}); err != nil {
		t.Fatal(err)
	}
	s.AddMembers(ctx(t), conv.ID, []string{"c"})
	if got, _ := s.GetConversation(ctx(t), conv.ID); got.RoleOf("c") != realtime.RoleMember {
		t.Errorf("re-added member kept its role %q", got.RoleOf("c"))
	}
}

func testSilence(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b", "c", "d")
	now := time.Now()
	if err := s.Silence(ctx(t), c.ID, []string{"b", "d"}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Silence(ctx(t), c.ID, []string{"c"}, now.Add(-time.Second)); err != nil { // already over
		t.Fatal(err)
	}
	got, err := s.GetConversation(ctx(t), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.SilencedAt("b", now) || got.SilencedAt("c", now) || got.SilencedAt("a", now) {
		t.Errorf("silenced = %v", got.Silenced)
	}
	if ids, err := s.ListSilenced(ctx(t), c.ID, "", 1); err != nil || len(ids) != 1 || ids[0] != "b" {
		t.Errorf("first page = %v, %v", ids, err)
	}
	if ids, _ := s.ListSilenced(ctx(t), c.ID, "b", 10); len(ids) != 2 || ids[0] != "c" || ids[1] != "d" {
		t.Errorf("after b = %v", ids)
	}
	if err := s.Unsilence(ctx(t), c.ID, []string{"b"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetConversation(ctx(t), c.ID); got.SilencedAt("b", now) || !got.SilencedAt("d", now) {
		t.Errorf("after unsilence = %v", got.Silenced)
	}
	if err := s.Silence(ctx(t), "0123456789abcdef01234567", []string{"b"}, time.Time{}); !errors.Is(err, realtime.ErrConvNotFound) {
		t.Errorf("silence in a missing conversation: %v", err)
	}
}

func testBlacklist(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b", "c")
	conv, removed, err := s.Block(ctx(t), c.ID, []string{"b", "x"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"b"}) || conv.HasMember("b") || !conv.HasMember("c") {
		t.Errorf("block: removed %v, members %v", removed, conv.Members)
	}
	if got, _ := s.Blocked(ctx(t), c.ID, []string{"a", "b", "x"}); !slices.Equal(got, []string{"b", "x"}) {
		t.Errorf("Blocked = %v", got)
	}
	if ids, _ := s.ListBlocked(ctx(t), c.ID, "", 10); !slices.Equal(ids, []string{"b", "x"}) {
		t.Errorf("ListBlocked = %v", ids)
	}
	if err := s.Unblock(ctx(t), c.ID, []string{"b"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Blocked(ctx(t), c.ID, []string{"b"}); len(got) != 0 {
		t.Errorf("still blocked after unblock: %v", got)
	}
}

func testAddressedMessages(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b")
	all := send(t, s, &realtime.Message{ConvID: c.ID, From: "svc", Data: "to all", System: true})
	toA := send(t, s, &realtime.Message{ConvID: c.ID, From: "svc", Data: "to a", System: true, To: []string{"a"}})
	fromB := send(t, s, &realtime.Message{ConvID: c.ID, From: "b", Data: "b to the service", To: []string{}})
	ids := func(viewer string) []string {
		t.Helper()
		ms, err := s.History(ctx(t), realtime.HistoryQuery{ConvID: c.ID, Viewer: viewer, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	if got := ids("a"); !slices.Equal(got, []string{all.ID, toA.ID}) {
		t.Errorf("a sees %v", got)
	}
	if got := ids("b"); !slices.Equal(got, []string{all.ID, fromB.ID}) {
		t.Errorf("b sees %v", got)
	}
	if got := ids(""); len(got) != 3 {
		t.Errorf("the application sees %v", got)
	}
	if m, _ := s.GetMessage(ctx(t), c.ID, toA.ID); !slices.Equal(m.To, []string{"a"}) {
		t.Errorf("To = %v", m.To)
	}
	if m, _ := s.GetMessage(ctx(t), c.ID, fromB.ID); m.To == nil || len(m.To) != 0 {
		t.Errorf("To of a message to nobody = %#v", m.To)
	}
}

func testReceiptHistory(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b")
	plain := text(t, s, c.ID, "a", "plain")
	r1 := send(t, s, &realtime.Message{ConvID: c.ID, From: "a", Data: "r1", Receipt: true})
	text(t, s, c.ID, "b", "plain 2")
	r2 := send(t, s, &realtime.Message{ConvID: c.ID, From: "b", Data: "r2", Receipt: true})
	got, err := s.History(ctx(t), realtime.HistoryQuery{ConvID: c.ID, Direction: realtime.Newer,
		Start: plain.Timestamp, StartInclusive: true, End: r2.Timestamp, EndInclusive: true, ReceiptOnly: true, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != r1.ID || got[1].ID != r2.ID || !got[0].Receipt {
		t.Errorf("ReceiptOnly history = %+v, want r1, r2", got)
	}
}

// readCursor is a cursor that reads conv up to its newest message.
func readCursor(t *testing.T, s realtime.Store, convID, client string) realtime.Cursor {
	t.Helper()
	c, err := s.GetConversation(ctx(t), convID)
	if err != nil {
		t.Fatal(err)
	}
	if c.LastMessage == nil {
		return realtime.Cursor{ConvID: convID, ClientID: client}
	}
	return realtime.Cursor{ConvID: convID, ClientID: client, ReadSeq: c.Seq, ReadAt: c.LastMessage.Timestamp, ReadMessageID: c.LastMessage.ID}
}

func unread(t *testing.T, s realtime.Store, client string) []realtime.UnreadTuple {
	t.Helper()
	u, err := s.Unread(ctx(t), client, 0, 0)
	if err != nil {
		t.Fatalf("Unread: %v", err)
	}
	return u
}

func testUnread(t *testing.T, s realtime.Store) {
	a := group(t, s, "me", "x")
	b := group(t, s, "me", "y")
	c := group(t, s, "me", "x", "y")
	d := group(t, s, "me", "z")
	text(t, s, a.ID, "x", "a1")
	a2 := text(t, s, a.ID, "x", "a2")
	text(t, s, b.ID, "me", "only mine") // own messages are never unread
	tick()
	send(t, s, &realtime.Message{ConvID: c.ID, From: "x", Data: "@me", MentionPids: []string{"me"}})
	c2 := text(t, s, c.ID, "y", "c2")
	tick()
	d1 := send(t, s, &realtime.Message{ConvID: d.ID, From: "z", Data: "@all", MentionAll: true})

	u := unread(t, s, "me")
	type row struct {
		conv      string
		n         int
		mentioned bool
		last      string
	}
	got := make([]row, len(u))
	for i, x := range u {
		if x.Last == nil {
			t.Fatalf("tuple %+v without Last", x)
		}
		got[i] = row{x.ConvID, x.Unread, x.Mentioned, x.Last.ID}
	}
	want := []row{{d.ID, 1, true, d1.ID}, {c.ID, 2, true, c2.ID}, {a.ID, 2, false, a2.ID}}
	if !slices.Equal(got, want) {
		t.Errorf("Unread = %+v, want newest first %+v", got, want)
	}
	if u[0].Last.Data != "@all" || !u[0].Last.MentionAll {
		t.Errorf("Last = %+v", u[0].Last)
	}
	if u, _ := s.Unread(ctx(t), "me", 0, 2); len(u) != 2 || u[0].ConvID != d.ID {
		t.Errorf("limit 2 = %+v", u)
	}
	if u, _ := s.Unread(ctx(t), "me", c2.Timestamp, 0); len(u) != 1 || u[0].ConvID != d.ID {
		t.Errorf("since = %+v, want only %s", u, d.ID)
	}
	// The sender of a mention-all is not mentioned by it.
	if u := unread(t, s, "z"); len(u) != 0 {
		t.Errorf("unread of the sender = %+v", u)
	}
	// Reading past the mention clears it; a new plain message is unread
	// without mention.
	if err := s.UpdateCursors(ctx(t), []realtime.Cursor{readCursor(t, s, c.ID, "me")}); err != nil {
		t.Fatal(err)
	}
	text(t, s, c.ID, "x", "c3")
	for _, x := range unread(t, s, "me") {
		if x.ConvID == c.ID && (x.Unread != 1 || x.Mentioned) {
			t.Errorf("after read + new message: %+v", x)
		}
	}
	// Sending into a conversation reads it.
	text(t, s, a.ID, "me", "reply")
	for _, x := range unread(t, s, "me") {
		if x.ConvID == a.ID {
			t.Errorf("conversation still unread after own reply: %+v", x)
		}
	}
	// Others' counts are independent.
	for _, x := range unread(t, s, "y") {
		if x.ConvID == c.ID && x.Unread != 1 {
			t.Errorf("y's unread in c = %d, want 1 (c3; y's own c2 read what came before)", x.Unread)
		}
	}
	if u := unread(t, s, "nobody"); len(u) != 0 {
		t.Errorf("unread of a stranger = %+v", u)
	}
}

func testWills(t *testing.T, s realtime.Store) {
	c := group(t, s, "a", "b")
	d := group(t, s, "a", "c")
	if w, err := s.TakeWill(ctx(t), "a"); w != nil || err != nil {
		t.Fatalf("TakeWill without will = %+v %v", w, err)
	}
	set := time.UnixMilli(time.Now().UnixMilli())
	if err := s.SetWill(ctx(t), realtime.Will{ClientID: "a", SetAt: set, Message: realtime.Message{ConvID: c.ID, From: "a", Data: "bye c"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWill(ctx(t), realtime.Will{ClientID: "a", SetAt: set, Message: realtime.Message{ConvID: d.ID, From: "a", Data: "bye d", MentionAll: true}}); err != nil {
		t.Fatal(err)
	}
	w, err := s.TakeWill(ctx(t), "a")
	if err != nil || w == nil {
		t.Fatalf("TakeWill = %+v %v", w, err)
	}
	if w.ClientID != "a" || w.Message.ConvID != d.ID || w.Message.Data != "bye d" || !w.Message.MentionAll || !w.SetAt.Equal(set) {
		t.Errorf("will = %+v, want the replacing one", w)
	}
	if w, _ := s.TakeWill(ctx(t), "a"); w != nil {
		t.Errorf("will taken twice: %+v", w)
	}
	if err := s.SetWill(ctx(t), realtime.Will{ClientID: "b", Message: realtime.Message{ConvID: c.ID, From: "b", Data: "x"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearWill(ctx(t), "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearWill(ctx(t), "b"); err != nil {
		t.Fatal(err)
	}
	if w, _ := s.TakeWill(ctx(t), "b"); w != nil {
		t.Errorf("cleared will taken: %+v", w)
	}
	err = s.SetWill(ctx(t), realtime.Will{ClientID: "a", Message: realtime.Message{ConvID: c.ID, From: "a", Data: strings.Repeat("x", MaxMessageSize+1)}})
	wantErr(t, "oversize will", err, realtime.ErrMessageTooLarge)
	err = s.SetWill(ctx(t), realtime.Will{ClientID: "", Message: realtime.Message{ConvID: c.ID, Data: "x"}})
	wantErr(t, "will without client", err, realtime.ErrInvalidMessage)
	// Racing takers: exactly one gets it.
	if err := s.SetWill(ctx(t), realtime.Will{ClientID: "r", Message: realtime.Message{ConvID: c.ID, From: "r", Data: "x"}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.TakeWill(context.Background(), "r")
			if err != nil {
				t.Errorf("TakeWill: %v", err)
			}
			if w != nil {
				mu.Lock()
				taken++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if taken != 1 {
		t.Errorf("will taken %d times", taken)
	}
}

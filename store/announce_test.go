package store_test

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/cluster"
	"github.com/leanhub/realtime/store"
)

// listen returns the events NOTIFYed on a new channel the store announces
// on, decoded (reading hub_events for large ones).
func listen(t *testing.T, s *store.SQL) (channel string, next func() *cluster.Event) {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	channel = "announce_test_" + hex.EncodeToString(b[:])
	ln := pgdriver.NewListener(s.DB())
	t.Cleanup(func() { ln.Close() })
	if err := ln.Listen(t.Context(), channel); err != nil {
		t.Fatal(err)
	}
	if err := s.Announce(channel, "node-a"); err != nil {
		t.Fatal(err)
	}
	// LISTEN takes effect some time after Listen returns: wait until a
	// notification of ours comes back.
	for {
		if _, err := s.DB().ExecContext(t.Context(), "SELECT pg_notify(?, 'ping')", channel); err != nil {
			t.Fatal(err)
		}
		_, p, err := ln.ReceiveTimeout(t.Context(), 100*time.Millisecond)
		if err == nil && p == "ping" {
			break
		}
	}
	next = func() *cluster.Event {
		t.Helper()
		_, payload, err := ln.ReceiveTimeout(t.Context(), 5*time.Second)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		origin, rest, _ := strings.Cut(payload, " ")
		if origin != "node-a" {
			t.Fatalf("origin %q, want node-a", origin)
		}
		_, data, _ := strings.Cut(rest, " ")
		if ref, ok := strings.CutPrefix(data, "@"); ok {
			id, _ := strconv.ParseInt(ref, 10, 64)
			raw, err := s.EventData(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			data = string(raw)
		}
		ev, err := cluster.Decode([]byte(data))
		if err != nil {
			t.Fatalf("payload %q: %v", payload, err)
		}
		return ev
	}
	return channel, next
}

func TestPostgresAnnouncesChangesInTheirTransaction(t *testing.T) {
	s := openPG(t, &store.Options{MaxMessageSize: 64 << 10})
	ctx := t.Context()
	channel, next := listen(t, s)
	conv, _, err := s.CreateConversation(ctx, &realtime.Conversation{Members: []string{"tom", "jerry"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddMembers(ctx, conv.ID, []string{"spike"}); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Kind != cluster.KindConv || ev.Conv != conv.ID {
		t.Fatalf("after AddMembers: %+v", ev)
	}
	// A failed change announces nothing: the next notification is the
	// message's.
	if _, err := s.UpdateConversation(ctx, realtime.ConversationUpdate{ID: "000000000000000000000000", Name: new("x")}); err == nil {
		t.Fatal("update of a missing conversation succeeded")
	}
	big := strings.Repeat("é", 3000) // over a NOTIFY payload once encoded
	res, err := s.AppendMessages(ctx, []*realtime.Message{
		{ConvID: conv.ID, From: "tom", Data: "hi"},
		{ConvID: conv.ID, From: "nobody", Data: "refused"},
		{ConvID: conv.ID, From: "jerry", Data: big},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []*realtime.Message{res[0].Message, res[2].Message} {
		ev := next()
		if ev.Kind != cluster.KindMessage || ev.Conv != conv.ID || ev.Msg == nil {
			t.Fatalf("message event %+v", ev)
		}
		got := ev.Msg.Message(ev.Conv)
		if got.ID != want.ID || got.Seq != want.Seq || got.Timestamp != want.Timestamp || got.Data != want.Data || got.From != want.From {
			t.Fatalf("announced %+v, stored %+v", got, want)
		}
	}
	if err := s.RevokeSessions(ctx, "tom", "phone", time.Now()); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Kind != cluster.KindRevoke || ev.Revoke.Client != "tom" || ev.Revoke.Device != "phone" {
		t.Fatalf("revocation event %+v", ev)
	}
	if err := s.Silence(ctx, conv.ID, []string{"jerry"}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Kind != cluster.KindConv {
		t.Fatalf("silence event %+v", ev)
	}
	// Notify: the same framing, in order, small and large mixed.
	var events [][]byte
	for i, d := range []string{"a", big, "b"} {
		b, _ := cluster.Encode(&cluster.Event{Kind: cluster.KindLive, Conv: conv.ID, Msg: &cluster.Msg{ID: strconv.Itoa(i), Data: d}})
		events = append(events, b)
	}
	if err := s.Notify(ctx, channel, "node-a", events); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if ev := next(); ev.Kind != cluster.KindLive || ev.Msg.ID != strconv.Itoa(i) {
			t.Fatalf("notified event %d: %+v", i, ev)
		}
	}
	if err := s.PruneEvents(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
}

func TestSQLiteRefusesAnnouncements(t *testing.T) {
	s := openSQLite(t, nil)
	if err := s.Announce("x", "y"); err == nil {
		t.Fatal("SQLite accepted Announce")
	}
}

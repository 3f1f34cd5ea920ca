package importer_test

import (
	"context"
	"encoding/base64"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub/hubtest"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

// After an import, a hub on the store serves the history to clients with
// LeanCloud's ids, timestamps and order, nothing is unread, and the
// conversations go on: a new message comes after the imported ones.
func TestHubServesImportedHistory(t *testing.T) {
	app := generateApp(8, 5000, 8)
	f := writeApp(t, app, 0)
	eachBackend(t, func(t *testing.T, b backend) {
		st := b.open(t)
		runImport(t, st, f.config())
		srv := hubtest.NewServer(t, st, nil) // started after the import, as documented
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()

		// The busiest conversation (a history of several pages), the
		// busiest group and a chat room.
		var busiest, group, room *genConv
		for i := range app.convs {
			c := &app.convs[i]
			n := len(app.want[c.id])
			switch {
			case c.transient:
				room = c
			case busiest == nil || n > len(app.want[busiest.id]):
				busiest = c
			}
			if len(c.members) > 2 && (group == nil || n > len(app.want[group.id])) {
				group = c
			}
		}
		if len(app.want[busiest.id]) <= 1000 {
			t.Fatalf("the busiest conversation has %d messages; want more than a page", len(app.want[busiest.id]))
		}
		for _, c := range []*genConv{busiest, group, room} {
			reader := "someone-else"
			if !c.transient {
				reader = c.members[len(c.members)-1]
			}
			ws, err := lcclient.Dial(ctx, srv.WebsocketURL())
			if err != nil {
				t.Fatal(err)
			}
			ws.AppID = srv.AppID
			if _, err := ws.Open(ctx, reader, lcclient.OpenOptions{}); err != nil {
				t.Fatal(err)
			}
			// Nothing imported is unread.
			short, stop := context.WithTimeout(ctx, 300*time.Millisecond)
			if p, err := ws.NextOf(short, wire.CommandType_unread); err == nil {
				for _, u := range p.GetUnreadMessage().GetConvs() {
					if u.GetUnread() > 0 {
						t.Errorf("%s: %d unread in %s after the import", reader, u.GetUnread(), u.GetCid())
					}
				}
			}
			stop()
			checkHistory(t, ctx, ws, c.id, app.want[c.id])
			ws.Close()
		}

		// The group goes on after its imported history.
		want := app.want[group.id]
		last := want[len(want)-1]
		sender := srv.Login(t, group.members[0])
		other := srv.Login(t, group.members[1])
		sent, err := sender.SendText(ctx, group.id, "after the switch")
		if err != nil {
			t.Fatal(err)
		}
		if sent.Timestamp <= last.Timestamp || slices.ContainsFunc(want, func(m realtime.Message) bool { return m.ID == sent.ID }) {
			t.Fatalf("new message %+v after imported %+v", sent, last)
		}
		if m, err := other.NextMessage(ctx); err != nil || m.ID != sent.ID {
			t.Fatalf("delivered %+v, %v", m, err)
		}
		stored, err := st.GetMessage(ctx, group.id, sent.ID)
		if err != nil || stored.Seq != last.Seq+1 {
			t.Fatalf("new message %+v (%v); the last imported has seq %d", stored, err, last.Seq)
		}
		third := srv.Login(t, group.members[2])
		ev, err := third.WaitEvent(ctx, "unread")
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Unread) != 1 || ev.Unread[0].ConvID != group.id || ev.Unread[0].Unread != 1 || ev.Unread[0].Last.ID != sent.ID {
			t.Fatalf("unread after one new message: %+v", ev.Unread)
		}
		// An imported message can be recalled by its sender by its
		// LeanCloud id.
		var own *realtime.Message
		for i := len(want) - 1; i >= 0; i-- {
			if want[i].From == group.members[0] && !want[i].Recalled {
				own = &want[i]
				break
			}
		}
		if own == nil {
			t.Fatal("the sender has no imported message")
		}
		if err := sender.Recall(ctx, group.id, own.ID, own.Timestamp); err != nil {
			t.Fatalf("recall %s: %v", own.ID, err)
		}
		if m, err := st.GetMessage(ctx, group.id, own.ID); err != nil || !m.Recalled {
			t.Fatalf("after recall: %+v %v", m, err)
		}
	})
}

// checkHistory pages back through a conversation's history as the SDK's
// queryMessages does (logs with t and mid of the oldest message so far,
// 1,000 a page) and compares it with want.
func checkHistory(t *testing.T, ctx context.Context, ws *lcclient.Client, convID string, want []realtime.Message) {
	t.Helper()
	var got []*wire.LogItem
	l := &wire.LogsCommand{Cid: proto.String(convID), L: proto.Int32(1000)}
	for {
		page, err := ws.History(ctx, l)
		if err != nil {
			t.Fatalf("history of %s: %v", convID, err)
		}
		if len(page) == 0 {
			break
		}
		got = append(slices.Clone(page), got...)
		l.T, l.Mid = proto.Int64(page[0].GetTimestamp()), proto.String(page[0].GetMsgId())
	}
	if len(got) != len(want) {
		t.Fatalf("history of %s: %d messages, want %d", convID, len(got), len(want))
	}
	for k, it := range got {
		w := want[k]
		data := w.Data
		if w.Binary != nil {
			data = base64.StdEncoding.EncodeToString(w.Binary)
		}
		if it.GetMsgId() != w.ID || it.GetTimestamp() != w.Timestamp || it.GetFrom() != w.From || it.GetData() != data ||
			it.GetBin() != (w.Binary != nil) || it.GetPatchTimestamp() != w.PatchTimestamp ||
			it.GetMentionAll() != w.MentionAll || !slices.Equal(it.GetMentionPids(), w.MentionPids) {
			t.Fatalf("history of %s, message %d:\n got %v\nwant %+v", convID, k, it, w)
		}
	}
}

package importer_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leanhub/realtime"
	"github.com/leanhub/realtime/importer"
)

// Bad records are skipped and reported with a reason; the rest is
// imported.
func TestImportBadInput(t *testing.T) {
	const (
		convA = "5a5ecde6c3422b738c8779d7"
		convB = "5a5ecde6c3422b738c8779db"
	)
	export := strings.Join([]string{
		`{"objectId":"` + convA + `","name":"A","m":["tom","jerry"],"c":"tom","createdAt":"2020-05-26T06:42:31.492Z","updatedAt":"2020-05-26T06:42:31.492Z"}`,
		`{"objectId": "5a5ecde6c3422b738c8779d8", "name": "unterminated`,
		`[1, 2]`,
		`{"objectId":"5A5ECDE6C3422B738C8779D9","m":["a"]}`,
		`{"objectId":"12345","m":["a"]}`,
		`{"objectId":"_tmp:AbCdEf12","m":["a","b"]}`,
		`{"objectId":"` + convA + `","name":"the same id again"}`,
		`{"objectId":"5a5ecde6c3422b738c8779da","m":"tom"}`,
		``,
		`{"objectId":"` + convB + `","name":"B","m":["tom","bad\u0001id",""],"lm":{"__type":"Date","iso":"2021-01-01T00:00:00.000Z"},"customField":{"x":1}}`,
		`{"name":"no id"}`,
	}, "\n")
	ts := int64(1_600_000_000_000)
	msg := func(id string, ts int64, extra string) string {
		return fmt.Sprintf(`{"msg-id":%q,"timestamp":%d,"conv-id":%q,"from":"tom","data":"hi","bin":false%s}`, id, ts, convA, extra)
	}
	future := time.Now().Add(48 * time.Hour).UnixMilli()
	history := strings.Join([]string{
		msg("qNkRkFWOeSqP65S9fDyHJw", ts, `,"extra-field":1,"priority":"high"`),
		msg("vdkGm4dtRNmhQ5gqUTFBiA", ts+1000, ``),
		msg("sameMs0000000000000001", ts+2000, ``),
		msg("sameMs0000000000000002", ts+2000, ``), // moved to ts+2001
		`{"msg-id": "abc`,
		msg("short", ts+3000, ``),
		msg("has space in it 1234", ts+3000, ``),
		`{"msg-id":12345,"timestamp":1,"conv-id":"` + convA + `","from":"tom","data":"x"}`,
		`{"msg-id":"noTimestamp00000000001","conv-id":"` + convA + `","from":"tom","data":"x"}`,
		// A numeric string is taken for a number.
		`{"msg-id":"stringTimestamp0000001","timestamp":"1600000004000","conv-id":"` + convA + `","from":"tom","data":"x"}`,
		`{"msg-id":"badBase640000000000001","timestamp":1600000005000,"conv-id":"` + convA + `","from":"tom","data":"!!!not base64","bin":true}`,
		`{"msg-id":"noSender00000000000001","timestamp":1600000006000,"conv-id":"` + convA + `","from":"","data":"x"}`,
		msg("qNkRkFWOeSqP65S9fDyHJw", ts, ``), // duplicate
		`{"msg-id":"unknownConv00000000001","timestamp":1600000007000,"conv-id":"5a5ecde6c3422b738c8779ff","from":"tom","data":"x"}`,
		`{"msg-id":"tempConv00000000000001","timestamp":1600000008000,"conv-id":"_tmp:AbCdEf12","from":"tom","data":"x"}`,
		`{"msg-id":"garbageConv00000000001","timestamp":1600000009000,"conv-id":"garbage","from":"tom","data":"x"}`,
		msg("future0000000000000001", future, ``),
		`{"msg-id":"inB0000000000000000001","timestamp":1600000010000,"to":"` + convB + `","conv-id":"` + convB + `00000000","from":"tom","data":"x"}`,
		`not json at all`,
	}, "\n")

	eachBackend(t, func(t *testing.T, b backend) {
		st := b.open(t)
		sum := runImport(t, st, &importer.Config{
			Conversations: []importer.Source{importer.Reader("export.jsonl", strings.NewReader(export))},
			History:       []importer.Source{importer.Reader("history.jsonl", strings.NewReader(history))},
		})
		t.Logf("\n%s", summaryText(sum))
		wantCounts(t, "conversations", sum.Conversations, 2, 0, 8)
		wantCounts(t, "messages", sum.Messages, 6, 0, 13)
		for reason, n := range map[importer.Reason]int{
			importer.ReasonMalformed:         4, // 2 conversation lines, 2 history lines
			importer.ReasonBadConversationID: 4, // uppercase, short, none; garbage conv-id
			importer.ReasonTemporary:         2,
			importer.ReasonDuplicateConv:     1,
			importer.ReasonBadField:          2, // m not an array; msg-id a number
			importer.ReasonBadMember:         2,
			importer.ReasonBadMessageID:      2,
			importer.ReasonBadTimestamp:      1,
			importer.ReasonBadBody:           1,
			importer.ReasonBadSender:         1,
			importer.ReasonDuplicateMessage:  1,
			importer.ReasonUnknownConv:       1,
			importer.ReasonFutureTimestamp:   1,
			importer.ReasonTimestampMoved:    1,
		} {
			if sum.Reasons[reason] != n {
				t.Errorf("%q: %d, want %d", reason, sum.Reasons[reason], n)
			}
		}
		if sum.UnknownFields["extra-field"] != 1 || sum.UnknownFields["priority"] != 1 || len(sum.UnknownFields) != 2 {
			t.Errorf("unknown fields %v", sum.UnknownFields)
		}
		for _, is := range sum.Issues {
			if is.Where == "" || is.Detail == "" {
				t.Errorf("issue without place or detail: %+v", is)
			}
		}
		if !strings.Contains(summaryText(sum), "export.jsonl:2") {
			t.Errorf("the summary does not say where the malformed line is:\n%s", summaryText(sum))
		}
		ctx := context.Background()
		a, err := st.History(ctx, realtime.HistoryQuery{ConvID: convA, Direction: realtime.Newer, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range a {
			got = append(got, fmt.Sprintf("%s@%d", m.ID, m.Timestamp-ts))
		}
		if want := "qNkRkFWOeSqP65S9fDyHJw@0 vdkGm4dtRNmhQ5gqUTFBiA@1000 sameMs0000000000000001@2000 sameMs0000000000000002@2001 stringTimestamp0000001@4000"; strings.Join(got, " ") != want {
			t.Errorf("conversation A: %v, want %s", got, want)
		}
		c, err := st.GetConversation(ctx, convB)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Members) != 1 || c.Members[0] != "tom" || string(c.Attrs) != `{"customField":{"x":1}}` || c.Seq != 1 {
			t.Errorf("conversation B: %+v attrs %s", c, c.Attrs)
		}
	})
}

// A dry run reports what it would do and writes nothing.
func TestImportDryRun(t *testing.T) {
	app := generateApp(10, 300, 7)
	f := writeApp(t, app, 3)
	cfg := f.config()
	cfg.DryRun = true
	sum := runImport(t, nil, cfg)
	wantCounts(t, "conversations", sum.Conversations, 10, 0, 0)
	wantCounts(t, "messages", sum.Messages, app.total, 0, 3)
	if !strings.Contains(summaryText(sum), "would import") {
		t.Errorf("summary:\n%s", summaryText(sum))
	}
	st := openStore(t, filepath.Join(t.TempDir(), "dry.db"))
	if c, err := st.QueryConversations(context.Background(), realtime.ConversationQuery{}); err != nil || len(c) != 0 {
		t.Fatalf("the store has %d conversations, %v", len(c), err)
	}
}

// UnreadAfterOwn leaves each member's read cursor at its own newest
// message.
func TestImportUnreadAfterOwn(t *testing.T) {
	const conv = "5a5ecde6c3422b738c8779d7"
	export := `{"objectId":"` + conv + `","m":["tom","jerry","kate"]}`
	var lines []string
	for i, from := range []string{"tom", "jerry", "tom", "tom", "jerry", "tom"} {
		lines = append(lines, fmt.Sprintf(`{"msg-id":"m%021d","timestamp":%d,"conv-id":%q,"from":%q,"data":"x"%s}`,
			i, 1_600_000_000_000+int64(i)*1000, conv, from, map[bool]string{true: `,"mention-pids":["kate"]`}[i == 4]))
	}
	eachBackend(t, func(t *testing.T, b backend) {
		st := b.open(t)
		runImport(t, st, &importer.Config{
			Conversations: []importer.Source{importer.Reader("export", strings.NewReader(export))},
			History:       []importer.Source{importer.Reader("history", strings.NewReader(strings.Join(lines, "\n")))},
			Unread:        importer.UnreadAfterOwn,
		})
		for client, want := range map[string]int{"tom": 0, "jerry": 1, "kate": 6} {
			u, err := st.Unread(context.Background(), client, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			if len(u) > 0 {
				got = u[0].Unread
			}
			if got != want {
				t.Errorf("%s: %d unread, want %d", client, got, want)
			}
			if client == "kate" && (len(u) == 0 || !u[0].Mentioned) {
				t.Errorf("kate is not mentioned: %+v", u)
			}
		}
	})
}

package importer

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// readAll returns the objectIds (or "?") of the records read and the
// positions reported bad.
func readAll(t testing.TB, in string) (ids []string, bad []int) {
	t.Helper()
	err := readRecords("in", strings.NewReader(in), func(r record) error {
		o, err := r.decode()
		if err != nil {
			bad = append(bad, r.pos)
			return nil
		}
		var id string
		_ = json.Unmarshal(o["objectId"], &id)
		if id == "" {
			id = "?"
		}
		ids = append(ids, id)
		return nil
	}, func(pos int, _ string) { bad = append(bad, pos) })
	if err != nil {
		t.Fatal(err)
	}
	return ids, bad
}

func TestReadRecordsShapes(t *testing.T) {
	big := strings.Repeat("x", 100<<10) // lines longer than the peek window
	objs := func(n int, pad string) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf(`{"objectId":"c%d","pad":%q}`, i, pad))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   string
		ids  int
		bad  []int
	}{
		{"empty", "", 0, nil},
		{"blank", "\n \n\t\n", 0, nil},
		{"lines", strings.Join(objs(3, ""), "\n") + "\n", 3, nil},
		{"lines without final newline", strings.Join(objs(3, ""), "\n"), 3, nil},
		{"lines with a bad first line", "{\"objectId\": \n" + strings.Join(objs(2, ""), "\n"), 2, []int{1}},
		{"lines with bad lines", objs(1, "")[0] + "\nnot json\n[1]\n\n" + objs(1, "")[0], 2, []int{2, 3}},
		{"lines, long first line", strings.Join(objs(3, big), "\n"), 3, nil},
		{"array", "[" + strings.Join(objs(3, ""), ",") + "]", 3, nil},
		{"array, pretty", "[\n  " + strings.Join(objs(3, ""), ",\n  ") + "\n]\n", 3, nil},
		{"array of one, pretty", "[\n" + objs(1, "")[0] + "\n]", 1, nil},
		{"array, one long line", "[" + strings.Join(objs(3, big), ",") + "]", 3, nil},
		{"arrays one after another", "[" + objs(1, "")[0] + "]\n[" + strings.Join(objs(2, ""), ",") + "]\n", 3, nil},
		{"array with a non-object", "[" + objs(1, "")[0] + ", 42, " + objs(1, "")[0] + "]", 2, []int{2}},
		{"array cut short", "[" + objs(1, "")[0] + ", {\"objectId\": ", 1, []int{2}},
		{"results", `{"results": [` + strings.Join(objs(3, ""), ",") + `], "count": 3}`, 3, nil},
		{"results, pretty", "{\n  \"results\": [\n" + strings.Join(objs(2, ""), ",\n") + "\n  ]\n}\n", 2, nil},
		{"results, count first", "{\n \"count\": 2,\n \"results\": [\n" + strings.Join(objs(2, ""), ",\n") + "\n]}", 2, nil},
		{"results, one long line", `{"results":[` + strings.Join(objs(2, big), ",") + `]}`, 2, nil},
		{"scan pages, one a line", `{"results":[` + strings.Join(objs(2, ""), ",") + `],"count":2,"cursor":"pQRhIrac3AEpLzCA"}` + "\n" +
			`{"results":[` + objs(1, "")[0] + `],"cursor":null}` + "\n", 3, nil},
		{"object without results", "{\n \"foo\": 1\n}", 0, []int{1}},
		{"a number", "42", 0, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids, bad := readAll(t, tc.in)
			if len(ids) != tc.ids || fmt.Sprint(bad) != fmt.Sprint(tc.bad) {
				t.Fatalf("%d records %v, bad %v; want %d, bad %v", len(ids), ids, bad, tc.ids, tc.bad)
			}
		})
	}
}

// FuzzReadRecords: any bytes are read without panicking, and every record
// handed on is a JSON object.
func FuzzReadRecords(f *testing.F) {
	for _, s := range []string{"", "{}\n{}", "[{}]", `{"results":[{}]}`, "[\n{}\n]", "{\n\"results\":[{},1]}", "{\"a\":\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		_ = readRecords("fuzz", strings.NewReader(in), func(r record) error {
			if len(r.raw) == 0 || r.raw[0] != '{' {
				t.Fatalf("record %q", r.raw)
			}
			return nil
		}, func(int, string) {})
	})
}

// FuzzParseItem: any object is parsed or refused with a reason, never
// half-valid.
func FuzzParseItem(f *testing.F) {
	f.Add(`{"msg-id":"qNkRkFWOeSqP65S9fDyHJw","timestamp":1,"conv-id":"5a5ecde6c3422b738c8779d7","from":"a","data":"x"}`)
	f.Add(`{"msg-id":"qNkRkFWOeSqP65S9fDyHJw","timestamp":1.5e3,"from":"a","data":"AAE=","bin":true,"mention-pids":["b",""]}`)
	f.Fuzz(func(t *testing.T, in string) {
		it, _, reason, _ := parseItem([]byte(in))
		if reason != "" {
			return
		}
		m := it.msg
		if !validMessageID(m.ID) || m.Timestamp <= 0 || !validClientID(m.From) {
			t.Fatalf("accepted %+v", m)
		}
		for _, p := range m.MentionPids {
			if !validClientID(p) {
				t.Fatalf("accepted mention %q", p)
			}
		}
	})
}

// FuzzParseConversation: an accepted conversation has a valid id and
// valid client ids only.
func FuzzParseConversation(f *testing.F) {
	f.Add(`{"objectId":"5a5ecde6c3422b738c8779d7","m":["a","b"],"c":"a","createdAt":"2020-05-26T06:42:31.492Z","x":1}`)
	f.Add(`{"objectId":"5a5ecde6c3422b738c8779d7","tr":true,"updatedAt":{"__type":"Date","iso":"2020-05-26T06:42:31.492Z"}}`)
	f.Fuzz(func(t *testing.T, in string) {
		var o map[string]json.RawMessage
		if json.Unmarshal([]byte(in), &o) != nil {
			return
		}
		c, _, reason, _ := parseConversation(o)
		if reason != "" {
			return
		}
		if !validConvID(c.ID) || (c.Creator != "" && !validClientID(c.Creator)) {
			t.Fatalf("accepted %+v", c)
		}
		for _, m := range append(c.Members, c.Muted...) {
			if !validClientID(m) {
				t.Fatalf("accepted member %q", m)
			}
		}
		if len(c.Attrs) > 0 && !json.Valid(c.Attrs) {
			t.Fatalf("attributes %q", c.Attrs)
		}
	})
}

package importer_test

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leanhub/realtime"
)

// A generated LeanCloud app: the _Conversation export and every
// conversation's history as LeanCloud's REST API answers it, with what the
// store must hold after an import.
type genApp struct {
	convs []genConv
	// items are the history items of each conversation, in LeanCloud's
	// shape, in time order (oldest first).
	items map[string][]map[string]any
	// want is the history each conversation must have after an import:
	// sorted, with timestamps moved to be unique.
	want  map[string][]realtime.Message
	total int // messages
	moved int // timestamps moved by the import
}

type genConv struct {
	row       map[string]any // the _Conversation row
	id        string
	members   []string
	transient bool
}

// users are client ids, some not ASCII.
func genUsers(n int) []string {
	out := make([]string, n)
	for i := range out {
		switch i % 7 {
		case 3:
			out[i] = fmt.Sprintf("用户%04d", i)
		case 5:
			out[i] = fmt.Sprintf("ユーザー_%d", i)
		default:
			out[i] = fmt.Sprintf("u%05d", i)
		}
	}
	return out
}

var texts = []string{
	"今天天气不错！", "Hello, world", "😀👍🏽 emoji and ZWJ 👨‍👩‍👧", "Привет", "مرحبا", "a \"quoted\" \\ line\nwith a newline",
	"<b>not html</b> & ampersand", "",
}

// generateApp makes nConvs conversations and about nMsgs messages with a
// fixed seed: 1:1 unique conversations and groups of up to 40 members with
// attributes, a few chat rooms and system conversations; text, rich-media
// (image, audio, video, file, location, custom) bodies, plain strings,
// binary messages, recalled ones, mentions, and a few pairs of messages
// in the same millisecond.
func generateApp(nConvs, nMsgs int, seed uint64) *genApp {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	users := genUsers(max(50, nConvs/4))
	app := &genApp{items: map[string][]map[string]any{}, want: map[string][]realtime.Message{}}
	base := time.Date(2019, 3, 1, 8, 0, 0, 0, time.UTC)
	pairs := map[[2]string]bool{}
	// Sizes: a few large conversations, many small ones.
	weights := make([]float64, nConvs)
	var sum float64
	for i := range weights {
		weights[i] = 1 / float64(1+i%97)
		sum += weights[i]
	}
	for i := range nConvs {
		id := fmt.Sprintf("5c%06x%016x", seed&0xffffff, i)
		created := base.Add(time.Duration(i) * 37 * time.Minute)
		row := map[string]any{
			"objectId":  id,
			"createdAt": created.Format("2006-01-02T15:04:05.000Z"),
			"updatedAt": created.Add(time.Hour).Format("2006-01-02T15:04:05.000Z"),
			"ACL":       map[string]any{"*": map[string]bool{"read": true, "write": true}},
		}
		c := genConv{id: id}
		switch {
		case i%50 == 7: // chat room
			c.transient = true
			row["tr"] = true
			row["name"] = fmt.Sprintf("聊天室 %d", i)
			row["m"] = []string{}
		case i%3 == 0: // 1:1
			var a, b string
			for {
				a, b = users[rng.IntN(len(users))], users[rng.IntN(len(users))]
				if a > b {
					a, b = b, a
				}
				if a != b && !pairs[[2]string{a, b}] {
					break
				}
			}
			pairs[[2]string{a, b}] = true
			c.members = []string{a, b}
			row["unique"] = true
			row["uniqueId"] = fmt.Sprintf("%032x", rng.Uint64())
			row["name"] = a + " & " + b
			row["c"] = a
		default:
			n := 3 + rng.IntN(38)
			set := map[string]bool{}
			for len(set) < n {
				set[users[rng.IntN(len(users))]] = true
			}
			for u := range set {
				c.members = append(c.members, u)
			}
			slices.Sort(c.members)
			row["name"] = fmt.Sprintf("群 %d · %s", i, texts[i%len(texts)])
			row["c"] = c.members[0]
			row["type"] = "group"
			row["level"] = i % 5
			if i%4 == 1 {
				row["attr"] = map[string]any{"topic": "旧版属性", "pinned": true}
			}
			if i%5 == 2 {
				row["mu"] = []string{c.members[1]}
			}
			if i%100 == 11 {
				row["sys"] = true
			}
		}
		if !c.transient {
			row["m"] = c.members
		}
		row["lm"] = map[string]any{"__type": "Date", "iso": created.Add(48 * time.Hour).Format("2006-01-02T15:04:05.000Z")}
		c.row = row
		app.convs = append(app.convs, c)

		count := int(float64(nMsgs) * weights[i] / sum)
		ts := created.UnixMilli() + 1000
		var items []map[string]any
		var msgs []realtime.Message
		for k := range count {
			if k == 0 || rng.IntN(200) != 0 { // else: the same millisecond as the previous one
				ts += 1 + rng.Int64N(90_000)
			}
			from := users[rng.IntN(len(users))]
			if !c.transient {
				from = c.members[rng.IntN(len(c.members))]
			}
			var idb [16]byte
			binary.BigEndian.PutUint64(idb[:8], rng.Uint64())
			binary.BigEndian.PutUint64(idb[8:], rng.Uint64())
			mid := base64.RawURLEncoding.EncodeToString(idb[:])
			it := map[string]any{
				"msg-id": mid, "timestamp": ts, "from": from, "is-conv": true, "is-room": false,
				"to": id, "bin": false, "from-ip": "202.117.15.217", "conv-id": id + "00000000",
			}
			if k%5 == 0 {
				it["ack-at"] = ts + 200
			}
			if k%11 == 3 {
				delete(it, "to") // the conversation is then told by conv-id's first 24 digits
			}
			m := realtime.Message{ID: mid, ConvID: id, From: from, Timestamp: ts}
			switch r := rng.IntN(1000); {
			case r < 10: // recalled
				it["data"] = `{"_lctype":-127}`
				m.Data, m.Recalled = realtime.RecalledBody, true
				if r < 5 {
					it["patch-timestamp"] = ts + 30_000
					m.PatchTimestamp = ts + 30_000
				}
			case r < 15: // binary
				b := make([]byte, 1+rng.IntN(64))
				for j := range b {
					b[j] = byte(rng.UintN(256))
				}
				it["bin"], it["data"] = true, base64.StdEncoding.EncodeToString(b)
				m.Binary = b
			case r < 120: // plain string
				m.Data = texts[rng.IntN(len(texts))] + fmt.Sprint(k)
			default:
				m.Data = richBody(rng, k)
			}
			if _, ok := it["data"]; !ok {
				it["data"] = m.Data
			}
			if !m.Recalled && !c.transient {
				if rng.IntN(200) == 0 {
					it["mention-all"], m.MentionAll = true, true
				}
				if rng.IntN(100) == 0 {
					p := []string{c.members[rng.IntN(len(c.members))]}
					it["mention-pids"], m.MentionPids = p, p
				}
			}
			items = append(items, it)
			msgs = append(msgs, m)
		}
		app.items[id] = items
		// What the import must make of them: sorted by (timestamp, id),
		// a timestamp not above the previous one moved just after it.
		slices.SortFunc(msgs, func(a, b realtime.Message) int {
			return cmp.Or(cmp.Compare(a.Timestamp, b.Timestamp), strings.Compare(a.ID, b.ID))
		})
		for k := range msgs {
			msgs[k].Seq = int64(k + 1)
			if k > 0 && msgs[k].Timestamp <= msgs[k-1].Timestamp {
				msgs[k].Timestamp = msgs[k-1].Timestamp + 1
				app.moved++
			}
		}
		app.want[id] = msgs
		app.total += len(msgs)
	}
	return app
}

// richBody is a typed-message body of one of LeanCloud's built-in types
// (or a custom one).
func richBody(rng *rand.Rand, k int) string {
	file := func(ext string, meta map[string]any) map[string]any {
		return map[string]any{"url": fmt.Sprintf("https://lc-files.example.com/%d.%s", k, ext),
			"objId": fmt.Sprintf("%024x", rng.Uint64()), "metaData": meta}
	}
	var b map[string]any
	switch rng.IntN(8) {
	case 0:
		b = map[string]any{"_lctype": -2, "_lctext": "看图", "_lcfile": file("jpg",
			map[string]any{"name": "照片.jpg", "format": "jpg", "height": 1080, "width": 1920, "size": 204800})}
	case 1:
		b = map[string]any{"_lctype": -3, "_lcfile": file("aac", map[string]any{"duration": 12.5, "size": 30000, "format": "aac"})}
	case 2:
		b = map[string]any{"_lctype": -4, "_lcfile": file("mp4", map[string]any{"duration": 61.2, "size": 3_000_000, "format": "mp4"})}
	case 3:
		b = map[string]any{"_lctype": -5, "_lctext": "在这里", "_lcloc": map[string]any{"longitude": 116.39 + rng.Float64(), "latitude": 39.9}}
	case 4:
		b = map[string]any{"_lctype": -6, "_lcfile": file("pdf", map[string]any{"name": "报告 final (2).pdf", "size": 123456})}
	case 5:
		b = map[string]any{"_lctype": 1, "_lctext": "custom", "_lcattrs": map[string]any{"card": map[string]any{"title": "🎁", "n": k}}}
	default:
		b = map[string]any{"_lctype": -1, "_lctext": texts[rng.IntN(len(texts))] + fmt.Sprint(" #", k),
			"_lcattrs": map[string]any{"k": k}}
	}
	out, _ := json.Marshal(b)
	return string(out)
}

// newestFirst is a conversation's items as LeanCloud pages them: newest
// first, ties by id descending.
func newestFirst(items []map[string]any) []map[string]any {
	out := slices.Clone(items)
	slices.SortStableFunc(out, func(a, b map[string]any) int {
		return cmp.Or(cmp.Compare(b["timestamp"].(int64), a["timestamp"].(int64)),
			strings.Compare(b["msg-id"].(string), a["msg-id"].(string)))
	})
	return out
}

// writeExport writes the _Conversation export in one of the three shapes.
func (a *genApp) writeExport(t testing.TB, dir, shape string) string {
	t.Helper()
	var b strings.Builder
	rows := make([]map[string]any, len(a.convs))
	for i, c := range a.convs {
		rows[i] = c.row
	}
	switch shape {
	case "lines":
		for _, r := range rows {
			line, _ := json.Marshal(r)
			b.Write(line)
			b.WriteString("\n")
		}
	case "array":
		out, _ := json.MarshalIndent(rows, "", "  ")
		b.Write(out)
	case "results":
		out, _ := json.MarshalIndent(map[string]any{"results": rows}, "", "  ")
		b.Write(out)
	}
	path := filepath.Join(dir, "_Conversation."+shape+".json")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeHistory writes every conversation's history as pages (newest first,
// as the REST API answers, sizes 1..1000) into files in shuffled order:
// half the files hold one JSON array each, the other half JSON lines of
// several pages of different conversations. dups items are written twice
// (overlapping pages).
func (a *genApp) writeHistory(t testing.TB, dir string, seed uint64, dups int) []string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	var pages [][]map[string]any
	for _, c := range a.convs {
		items := newestFirst(a.items[c.id])
		for len(items) > 0 {
			n := min(len(items), 1+rng.IntN(1000))
			pages = append(pages, items[:n])
			items = items[n:]
		}
	}
	for range dups {
		p := pages[rng.IntN(len(pages))]
		pages = append(pages, []map[string]any{p[rng.IntN(len(p))]})
	}
	rng.Shuffle(len(pages), func(i, j int) { pages[i], pages[j] = pages[j], pages[i] })
	var files []string
	for i := 0; i < len(pages); {
		path := filepath.Join(dir, fmt.Sprintf("history-%04d.json", len(files)))
		var b strings.Builder
		if len(files)%2 == 0 {
			out, _ := json.Marshal(pages[i])
			b.Write(out)
			i++
		} else {
			for k := 0; k < 5 && i < len(pages); k++ {
				for _, it := range pages[i] {
					line, _ := json.Marshal(it)
					b.Write(line)
					b.WriteString("\n")
				}
				i++
			}
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	return files
}

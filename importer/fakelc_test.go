package importer_test

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeLeanCloud answers LeanCloud's REST history endpoints (API v2, as
// documented: GET /1.2/rtm/conversations/{id}/messages and GET
// /1.2/rtm/messages with msgid, timestamp, till_msgid, till_timestamp,
// include_start, include_stop, reversed and limit; newest first unless
// reversed) from generated items, with the master key checked, and fails
// every failEvery-th request with 429 or 503 to exercise retries.
type fakeLeanCloud struct {
	srv       *httptest.Server
	appID     string
	masterKey string
	failEvery int64

	mu    sync.Mutex
	convs map[string][]map[string]any // newest first
	all   []map[string]any            // every conversation's, newest first

	requests, failed  atomic.Int64
	inflight, maxSeen atomic.Int64
	delay             time.Duration
}

func newFakeLeanCloud(t testing.TB, items map[string][]map[string]any) *fakeLeanCloud {
	f := &fakeLeanCloud{appID: "fakeAppId-gzGzoHsz", masterKey: "fake-master-key", convs: map[string][]map[string]any{}}
	for id, its := range items {
		f.convs[id] = newestFirst(its)
		f.all = append(f.all, its...)
	}
	f.all = newestFirst(f.all)
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func lcError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "error": msg})
}

func (f *fakeLeanCloud) serve(w http.ResponseWriter, r *http.Request) {
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		m := f.maxSeen.Load()
		if n <= m || f.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	k := f.requests.Add(1)
	if r.Header.Get("X-LC-Id") != f.appID || r.Header.Get("X-LC-Key") != f.masterKey+",master" {
		lcError(w, http.StatusUnauthorized, 401, "Unauthorized.")
		return
	}
	if r.Method != http.MethodGet {
		lcError(w, http.StatusMethodNotAllowed, 1, "method not allowed")
		return
	}
	if f.failEvery > 0 && k%f.failEvery == 0 {
		f.failed.Add(1)
		if k%(2*f.failEvery) == 0 {
			w.Header().Set("Retry-After", "0")
			lcError(w, http.StatusTooManyRequests, 429, "Too many requests.")
		} else {
			lcError(w, http.StatusServiceUnavailable, 503, "Service unavailable.")
		}
		return
	}
	var items []map[string]any
	f.mu.Lock()
	switch {
	case r.URL.Path == "/1.2/rtm/messages":
		items = f.all
	case strings.HasPrefix(r.URL.Path, "/1.2/rtm/conversations/") && strings.HasSuffix(r.URL.Path, "/messages"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/1.2/rtm/conversations/"), "/messages")
		items = f.convs[id]
	default:
		f.mu.Unlock()
		lcError(w, http.StatusNotFound, 404, "not found")
		return
	}
	f.mu.Unlock()
	page, err := queryHistory(items, r.URL.Query(), time.Now().UnixMilli())
	if err != nil {
		lcError(w, http.StatusBadRequest, 1, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(page)
}

// position is where an item sits in time: timestamp, then id.
type position struct {
	ts int64
	id string // "" compares by timestamp only
}

func itemPos(it map[string]any) position {
	return position{it["timestamp"].(int64), it["msg-id"].(string)}
}

// compare orders a against a bound b; an empty id in b compares equal to
// every item of b's millisecond.
func (a position) compare(b position) int {
	if c := cmp.Compare(a.ts, b.ts); c != 0 || b.id == "" {
		return c
	}
	return strings.Compare(a.id, b.id)
}

type badParam string

func (e badParam) Error() string { return string(e) }

// queryHistory applies the documented history parameters to items (newest
// first).
func queryHistory(items []map[string]any, q map[string][]string, now int64) ([]map[string]any, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	num := func(k string, def int64) (int64, error) {
		s := get(k)
		if s == "" {
			return def, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, badParam(k + " is not a number")
		}
		return n, nil
	}
	reversed := get("reversed") == "true"
	startDef, stopDef := now, int64(0)
	if reversed {
		startDef, stopDef = 0, now
	}
	start, err := num("timestamp", startDef)
	if err != nil {
		return nil, err
	}
	stop, err := num("till_timestamp", stopDef)
	if err != nil {
		return nil, err
	}
	if get("msgid") != "" && get("timestamp") == "" {
		return nil, badParam("msgid needs timestamp")
	}
	limit, err := num("limit", 100)
	if err != nil {
		return nil, err
	}
	limit = max(1, min(limit, 1000))
	from, to := position{start, get("msgid")}, position{stop, get("till_msgid")}
	inclStart, inclStop := get("include_start") == "true", get("include_stop") == "true"
	ordered := items
	if reversed {
		ordered = slices.Clone(items)
		slices.Reverse(ordered)
	}
	out := []map[string]any{}
	for _, it := range ordered {
		p := itemPos(it)
		cs, ce := p.compare(from), p.compare(to)
		if reversed {
			cs, ce = -cs, -ce
		}
		// Newest first: after the start means older (cs < 0), before the
		// stop means newer (ce > 0).
		if cs > 0 || (cs == 0 && !inclStart) || ce < 0 || (ce == 0 && !inclStop) {
			continue
		}
		out = append(out, it)
		if int64(len(out)) == limit {
			break
		}
	}
	return out, nil
}

// The fake answers the worked examples of LeanCloud's REST API docs
// (messages id1, id2, id3 at t1 < t2 < t3).
func TestFakeLeanCloudQueries(t *testing.T) {
	items := newestFirst([]map[string]any{
		{"msg-id": "id1", "timestamp": int64(1)}, {"msg-id": "id2", "timestamp": int64(2)}, {"msg-id": "id3", "timestamp": int64(3)},
	})
	for _, tc := range []struct {
		q    string
		want string
	}{
		{"timestamp=3&msgid=id3&till_timestamp=1&till_msgid=id1", "id2"},
		{"timestamp=3&msgid=id3&till_timestamp=1&till_msgid=id1&include_start=true", "id3 id2"},
		{"timestamp=3&msgid=id3&till_timestamp=1&till_msgid=id1&include_stop=true", "id2 id1"},
		{"timestamp=1&msgid=id1&till_timestamp=3&till_msgid=id3&reversed=true", "id2"},
		{"timestamp=1&msgid=id1&till_timestamp=3&till_msgid=id3&reversed=true&include_start=true", "id1 id2"},
		{"timestamp=1&msgid=id1&till_timestamp=3&till_msgid=id3&reversed=true&include_stop=true", "id2 id3"},
		{"", "id3 id2 id1"},
		{"limit=2", "id3 id2"},
		{"timestamp=2&msgid=id2&limit=2", "id1"},
		{"reversed=true", "id1 id2 id3"},
	} {
		q, _ := parseQuery(tc.q)
		page, err := queryHistory(items, q, 100)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range page {
			ids = append(ids, it["msg-id"].(string))
		}
		if got := strings.Join(ids, " "); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.q, got, tc.want)
		}
	}
}

func parseQuery(s string) (map[string][]string, error) {
	q := map[string][]string{}
	for _, kv := range strings.Split(s, "&") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			q[k] = append(q[k], v)
		}
	}
	return q, nil
}

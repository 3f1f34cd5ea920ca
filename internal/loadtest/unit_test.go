package loadtest

import (
	"strings"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	d := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for _, c := range []struct {
		q    float64
		want int
	}{{0, 1}, {0.1, 1}, {0.5, 5}, {0.51, 6}, {0.9, 9}, {0.99, 10}, {1, 10}} {
		if got := Percentile(d, c.q); got != time.Duration(c.want)*time.Millisecond {
			t.Errorf("Percentile(1..10, %v) = %v, want %dms", c.q, got, c.want)
		}
	}
	if got := Percentile(nil, 0.5); got != 0 {
		t.Errorf("empty: %v", got)
	}
	if got := Percentile(ms(7), 0.99); got != 7*time.Millisecond {
		t.Errorf("one value: %v", got)
	}
	// p99 of 1000 values is the 990th.
	big := make([]time.Duration, 1000)
	for i := range big {
		big[i] = time.Duration(i+1) * time.Microsecond
	}
	if got := Percentile(big, 0.99); got != 990*time.Microsecond {
		t.Errorf("p99 of 1..1000 µs = %v", got)
	}
}

func TestSummarizeSortsAndSummarises(t *testing.T) {
	s := Summarize([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond})
	if s.Count != 3 || s.P50 != 2 || s.Max != 3 || s.Mean != 2 {
		t.Errorf("summary %+v", s)
	}
	if e := Summarize(nil); e.Count != 0 || e.String() != "no samples" {
		t.Errorf("empty summary %+v", e)
	}
	var l Latencies
	a, b := l.NewShard(), l.NewShard()
	a.Add(time.Millisecond)
	b.Add(3 * time.Millisecond)
	if s := l.Summary(); s.Count != 2 || s.Max != 3 {
		t.Errorf("merged shards %+v", s)
	}
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestThrottleLeadingThenTrailing(t *testing.T) {
	th := NewThrottle(time.Second, 100)
	// Leading edge: the first message is acked at once.
	f, send, due := th.Add("c", 10, "m10", at(0))
	if !send || f != (Flush{ConvID: "c", FromTS: 10, ToTS: 10, ToMID: "m10", Count: 1}) || !due.IsZero() {
		t.Fatalf("first message: %+v %v %v", f, send, due)
	}
	// Within the second: gathered; the first one asks for a timer.
	_, send, due = th.Add("c", 11, "m11", at(100))
	if send || !due.Equal(at(1000)) {
		t.Fatalf("second message: send %v due %v, want a timer at +1s", send, due)
	}
	_, send, due = th.Add("c", 13, "m13", at(200))
	_, send2, due2 := th.Add("c", 12, "m12", at(300)) // out of order: the range still covers it
	if send || !due.IsZero() || send2 || !due2.IsZero() {
		t.Fatal("later messages in the window must neither send nor arm another timer")
	}
	// The timer fires early (clock skew): wait more.
	if _, send, due = th.Due("c", at(900)); send || !due.Equal(at(1000)) {
		t.Fatalf("early timer: send %v due %v", send, due)
	}
	f, send, due = th.Due("c", at(1000))
	if !send || f != (Flush{ConvID: "c", FromTS: 11, ToTS: 13, ToMID: "m13", Count: 3}) || !due.IsZero() {
		t.Fatalf("trailing flush: %+v %v %v", f, send, due)
	}
	// Nothing pending: the next timer does nothing.
	if _, send, due = th.Due("c", at(2000)); send || !due.IsZero() {
		t.Fatal("empty timer must do nothing")
	}
	// A quiet second later, the leading edge again.
	if _, send, _ = th.Add("c", 20, "m20", at(2500)); !send {
		t.Fatal("after a quiet second the next message goes at once")
	}
}

func TestThrottleMaxPendingAndConversations(t *testing.T) {
	th := NewThrottle(time.Second, 3)
	th.Add("a", 1, "1", at(0)) // leading
	_, _, due := th.Add("a", 2, "2", at(10))
	if due.IsZero() {
		t.Fatal("want a timer")
	}
	th.Add("a", 3, "3", at(20))
	// Another conversation has its own window.
	if _, send, _ := th.Add("b", 1, "1", at(30)); !send {
		t.Fatal("conversation b: leading edge")
	}
	f, send, _ := th.Add("a", 4, "4", at(40)) // third pending: at once
	if !send || f.Count != 3 || f.FromTS != 2 || f.ToTS != 4 {
		t.Fatalf("max pending flush: %+v %v", f, send)
	}
	if th.Pending("a") != 0 {
		t.Fatal("pending after flush")
	}
	// The timer armed at 10 fires at 1000: nothing pending, it ends.
	if _, send, due = th.Due("a", at(1000)); send || !due.IsZero() {
		t.Fatalf("stale timer: %v %v", send, due)
	}
	// A message after the max-pending flush waits for 40+1000 and arms a
	// new timer, since the old one ended.
	_, send, due = th.Add("a", 5, "5", at(1010))
	if send || !due.Equal(at(1040)) {
		t.Fatalf("after max-pending flush: send %v due %v", send, due)
	}
	// A timer that fires after a max-pending flush moved the window is
	// told the new due time.
	th.Add("a", 6, "6", at(1020))
	f, send, _ = th.Add("a", 7, "7", at(1030)) // third pending again
	if !send || f.Count != 3 {
		t.Fatalf("second max-pending flush: %+v", f)
	}
	th.Add("a", 8, "8", at(1035))
	if _, send, due = th.Due("a", at(1040)); send || !due.Equal(at(2030)) {
		t.Fatalf("moved window: send %v due %v", send, due)
	}
	if f, send, _ = th.Due("a", at(2030)); !send || f.ToTS != 8 {
		t.Fatalf("moved window flush: %+v %v", f, send)
	}
}

func TestThrottleWithoutMaxPending(t *testing.T) {
	th := NewThrottle(time.Second, 0)
	th.Add("c", 1, "1", at(0))
	for i := 2; i < 500; i++ {
		if _, send, _ := th.Add("c", int64(i), "x", at(i)); send {
			t.Fatalf("message %d sent inside the window without a pending limit", i)
		}
	}
}

func TestBodyRoundTrip(t *testing.T) {
	b := Body("run1", 42, 1700000000123456789, 150)
	if len(b) != 150 {
		t.Errorf("body is %d bytes, want 150: %s", len(b), b)
	}
	if !strings.HasPrefix(b, `{"_lctype":-1,"_lctext":"`) || !strings.HasSuffix(b, `"}`) {
		t.Errorf("not a TextMessage body: %s", b)
	}
	seq, sent, ok := ParseBody(b, "run1")
	if !ok || seq != 42 || sent != 1700000000123456789 {
		t.Errorf("ParseBody = %d %d %v", seq, sent, ok)
	}
	if _, _, ok := ParseBody(b, "run2"); ok {
		t.Error("another run's body accepted")
	}
	if _, _, ok := ParseBody(`{"_lctype":-1,"_lctext":"hello"}`, "run1"); ok {
		t.Error("a foreign body accepted")
	}
	if small := Body("r", 1, 2, 10); !strings.Contains(small, "ll1 r 1 2 ") {
		t.Errorf("a too-small size still carries the fields: %s", small)
	}
}

func TestUUIDv4(t *testing.T) {
	u := newUUID()
	if len(u) != 36 || u[14] != '4' || !strings.ContainsAny(u[19:20], "89ab") || u == newUUID() {
		t.Errorf("uuid %s", u)
	}
}

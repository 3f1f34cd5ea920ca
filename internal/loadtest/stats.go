package loadtest

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Latencies collects durations from many goroutines. Each goroutine should
// own a Shard (no locking on the hot path); Summary merges them.
type Latencies struct {
	mu     sync.Mutex
	shards []*Shard
}

// Shard is one goroutine's share of a Latencies. Not safe for concurrent
// use.
type Shard struct{ d []time.Duration }

// NewShard returns a shard registered with l.
func (l *Latencies) NewShard() *Shard {
	s := &Shard{}
	l.mu.Lock()
	l.shards = append(l.shards, s)
	l.mu.Unlock()
	return s
}

// Add records one duration.
func (s *Shard) Add(d time.Duration) { s.d = append(s.d, d) }

// Summary merges every shard. Call it once the writers are done.
func (l *Latencies) Summary() LatencySummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.shards {
		n += len(s.d)
	}
	all := make([]time.Duration, 0, n)
	for _, s := range l.shards {
		all = append(all, s.d...)
	}
	return Summarize(all)
}

// LatencySummary is what the reports show of a set of durations, in
// milliseconds.
type LatencySummary struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// Summarize sorts d (in place) and summarises it.
func Summarize(d []time.Duration) LatencySummary {
	if len(d) == 0 {
		return LatencySummary{}
	}
	slices.Sort(d)
	var sum float64
	for _, x := range d {
		sum += float64(x)
	}
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	return LatencySummary{
		Count: len(d),
		P50:   ms(Percentile(d, 0.50)),
		P90:   ms(Percentile(d, 0.90)),
		P99:   ms(Percentile(d, 0.99)),
		Max:   ms(d[len(d)-1]),
		Mean:  sum / float64(len(d)) / float64(time.Millisecond),
	}
}

// Percentile returns the q-quantile (0 <= q <= 1) of sorted by the
// nearest-rank method: the smallest value such that at least q of the
// values are at or below it. It returns 0 for an empty slice.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	switch {
	case q <= 0:
		return sorted[0]
	case q >= 1:
		return sorted[n-1]
	}
	rank := int(math.Ceil(q * float64(n))) // 1-based
	return sorted[max(rank, 1)-1]
}

func (s LatencySummary) String() string {
	if s.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (%d samples)", s.P50, s.P90, s.P99, s.Max, s.Count)
}

// Errors counts failures by a short key: a LeanCloud error code ("4116"),
// "timeout", "closed:1008" and so on. Safe for concurrent use.
type Errors struct {
	mu sync.Mutex
	m  map[string]int
	// first keeps one example message per key.
	first map[string]string
}

// Add counts one failure of kind key with an example text.
func (e *Errors) Add(key, example string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m, e.first = map[string]int{}, map[string]string{}
	}
	e.m[key]++
	if _, ok := e.first[key]; !ok {
		e.first[key] = example
	}
}

// Counts returns a copy of the counts.
func (e *Errors) Counts() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

// Total is the number of failures counted.
func (e *Errors) Total() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, v := range e.m {
		n += v
	}
	return n
}

// String lists the counts with an example each, sorted by key.
func (e *Errors) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(e.m))
	for k := range e.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s x%d (e.g. %s)", k, e.m[k], e.first[k])
	}
	return b.String()
}

// rate is n per second over d (0 for a zero d).
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Command report reads the JSON results bench/run.sh leaves in a folder and
// prints the comparison table; with -half-rate it prints half of one
// fan-out run's saturation rate (messages/s) for the latency run.
//
//	report -members 1000 /tmp/leanbench.XXXX
//	report -half-rate 1000 /tmp/leanbench.XXXX/hub-fanout-sqlite.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// doc is any result file: leanload's (scenario parts nested) or the
// centrifuge load's and the ceiling's (flat).
type doc map[string]any

func load(path string) (doc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d doc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// num digs a number out of d by a dotted path, looking inside the
// scenario part first.
func (d doc) num(path string) (float64, bool) {
	for _, root := range []string{"fanout.", "pairs.", "idle.", "storm.", ""} {
		var cur any = map[string]any(d)
		ok := true
		for _, k := range strings.Split(root+path, ".") {
			if k == "" {
				continue
			}
			m, isMap := cur.(map[string]any)
			if !isMap {
				ok = false
				break
			}
			if cur, ok = m[k]; !ok {
				break
			}
		}
		if f, isNum := cur.(float64); ok && isNum {
			return f, true
		}
	}
	return 0, false
}

func (d doc) status() string {
	if d == nil {
		return "not run"
	}
	s := "ok"
	if ok, _ := d["ok"].(bool); !ok {
		s = "FAILED"
		if f, _ := d["failures"].([]any); len(f) > 0 {
			first, _, _ := strings.Cut(fmt.Sprint(f[0]), "\n")
			s += ": " + first
		}
	}
	if e, _ := d["errors"].(map[string]any); len(e) > 0 {
		keys := make([]string, 0, len(e))
		for k := range e {
			keys = append(keys, fmt.Sprintf("%s x%v", k, e[k]))
		}
		sort.Strings(keys)
		if len(keys) > 4 {
			keys = append(keys[:4], "...")
		}
		s += " (errors: " + strings.Join(keys, ", ") + ")"
	}
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

func main() {
	half := flag.Int("half-rate", 0, "print half the saturation rate (msgs/s) of the fan-out result given, for this many members")
	members := flag.Int("members", 1000, "members of the fan-out runs")
	flag.Parse()
	if *half > 0 {
		d, err := load(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
		v, ok := d.num("deliveries_per_sec")
		if !ok || v <= 0 {
			fmt.Fprintln(os.Stderr, "report: no deliveries/s in", flag.Arg(0))
			os.Exit(1)
		}
		fmt.Printf("%.0f\n", v/float64(*half)/2)
		return
	}
	dir := flag.Arg(0)
	get := func(name string) doc {
		d, err := load(filepath.Join(dir, name+".json"))
		if err != nil {
			return nil
		}
		return d
	}
	val := func(d doc, path string) string {
		if d == nil {
			return "-"
		}
		v, ok := d.num(path)
		if !ok {
			return "-"
		}
		switch {
		case v >= 1000:
			return fmt.Sprintf("%.0f", v)
		case v >= 10:
			return fmt.Sprintf("%.1f", v)
		default:
			return fmt.Sprintf("%.2f", v)
		}
	}
	ratio := func(a doc, ap string, b doc, bp string) string {
		if a == nil || b == nil {
			return "-"
		}
		x, ok1 := a.num(ap)
		y, ok2 := b.num(bp)
		if !ok1 || !ok2 || y == 0 {
			return "-"
		}
		if r := x / y; r < 0.1 {
			return fmt.Sprintf("%.3f", r)
		}
		return fmt.Sprintf("%.2f", x/y)
	}
	hs, hp, cf := get("hub-fanout-sqlite"), get("hub-fanout-pg"), get("centrifuge-fanout")
	ps, pp, cs, cp := get("hub-pairs-sqlite"), get("hub-pairs-pg"), get("ceiling-sqlite"), get("ceiling-pg")
	idle := get("hub-idle")
	halfS, halfP, halfC := get("hub-half-sqlite"), get("hub-half-pg"), get("centrifuge-half")
	// A half-rate run derived from a failed saturation run says so.
	basis := func(half, sat doc) string {
		if half == nil || sat == nil {
			return ""
		}
		if ok, _ := sat["ok"].(bool); !ok {
			return " [its saturation run FAILED]"
		}
		return ""
	}
	storm := get("storm")

	rows := [][]string{
		{"run", "figure", "value", "ratio", "status"},
		{fmt.Sprintf("fanout 1->%d, hub SQLite", *members), "deliveries/s", val(hs, "deliveries_per_sec"), "x" + ratio(hs, "deliveries_per_sec", cf, "deliveries_per_sec") + " centrifuge", hs.status()},
		{"", "p50 / p99 ms (saturated)", val(hs, "latency.p50_ms") + " / " + val(hs, "latency.p99_ms"), "", ""},
		{fmt.Sprintf("fanout 1->%d, hub PostgreSQL", *members), "deliveries/s", val(hp, "deliveries_per_sec"), "x" + ratio(hp, "deliveries_per_sec", cf, "deliveries_per_sec") + " centrifuge", hp.status()},
		{"", "p50 / p99 ms (saturated)", val(hp, "latency.p50_ms") + " / " + val(hp, "latency.p99_ms"), "", ""},
		{fmt.Sprintf("fanout 1->%d, centrifuge", *members), "deliveries/s", val(cf, "deliveries_per_sec"), "", cf.status()},
		{"", "p50 / p99 ms (saturated)", val(cf, "latency.p50_ms") + " / " + val(cf, "latency.p99_ms"), "", ""},
		{"pairs, hub SQLite", "persisted msgs/s", val(ps, "persisted_per_sec"), "x" + ratio(ps, "persisted_per_sec", cs, "rows_per_sec") + " ceiling", ps.status()},
		{"", "p50 / p99 ms", val(ps, "latency.p50_ms") + " / " + val(ps, "latency.p99_ms"), "", ""},
		{"ceiling, SQLite", "multi-row insert rows/s", val(cs, "rows_per_sec"), "", ""},
		{"pairs, hub PostgreSQL", "persisted msgs/s", val(pp, "persisted_per_sec"), "x" + ratio(pp, "persisted_per_sec", cp, "rows_per_sec") + " ceiling", pp.status()},
		{"", "p50 / p99 ms", val(pp, "latency.p50_ms") + " / " + val(pp, "latency.p99_ms"), "", ""},
		{"ceiling, PostgreSQL", "multi-row insert rows/s", val(cp, "rows_per_sec"), "", ""},
		{"idle sockets, hub SQLite", "server RSS KiB per socket", val(idle, "server_rss_per_socket_kib"), strings.TrimSuffix(val(idle, "logged_in"), ".0") + " sockets", idle.status()},
		{"fanout at half saturation, hub SQLite", "p50 / p99 ms", val(halfS, "latency.p50_ms") + " / " + val(halfS, "latency.p99_ms"), "at " + val(halfS, "rate_target") + " msgs/s", halfS.status() + basis(halfS, hs)},
		{"fanout at half saturation, hub PostgreSQL", "p50 / p99 ms", val(halfP, "latency.p50_ms") + " / " + val(halfP, "latency.p99_ms"), "at " + val(halfP, "rate_target") + " msgs/s", halfP.status() + basis(halfP, hp)},
		{"fanout at half saturation, centrifuge", "p50 / p99 ms", val(halfC, "latency.p50_ms") + " / " + val(halfC, "latency.p99_ms"), "at " + val(halfC, "rate_target") + " msgs/s", halfC.status() + basis(halfC, cf)},
		{"hub p99 / centrifuge p99 at half saturation", "", ratio(halfS, "latency.p99_ms", halfC, "latency.p99_ms") + " (SQLite), " + ratio(halfP, "latency.p99_ms", halfC, "latency.p99_ms") + " (PostgreSQL)", "", ""},
		{"storm after restart, hub SQLite", "last notification s", val(storm, "last_notification_seconds"), "", storm.status()},
		{"", "per-client p50 / p99 ms", val(storm, "notification_latency.p50_ms") + " / " + val(storm, "notification_latency.p99_ms"), "steady p99 " + val(storm, "steady.latency.p99_ms") + " ms", ""},
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	for k, r := range rows {
		var b strings.Builder
		for i, c := range r {
			b.WriteString("| " + c + strings.Repeat(" ", width[i]-len(c)) + " ")
		}
		fmt.Println(b.String() + "|")
		if k == 0 {
			var s strings.Builder
			for i := range r {
				s.WriteString("|" + strings.Repeat("-", width[i]+2))
			}
			fmt.Println(s.String() + "|")
		}
	}
}

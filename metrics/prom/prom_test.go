package prom_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/leanhub/realtime/metrics/prom"
)

func gather(t *testing.T, reg *prometheus.Registry) map[string][]*dto.Metric {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]*dto.Metric{}
	for _, f := range fams {
		out[f.GetName()] = f.GetMetric()
	}
	return out
}

func labeled(ms []*dto.Metric, name, value string) *dto.Metric {
	for _, m := range ms {
		for _, l := range m.GetLabel() {
			if l.GetName() == name && l.GetValue() == value {
				return m
			}
		}
	}
	return nil
}

func TestMetricsCountWhatTheHubReports(t *testing.T) {
	m := prom.New()
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	m.SocketOpened()
	m.SocketOpened()
	m.SocketClosed("slow_consumer")
	m.Command("direct")
	m.Command("direct")
	m.Command("nonsense")
	m.LoginFailed(4111)
	m.LoginFailed(4999)
	m.MessagesStored(3, 2*time.Millisecond)
	m.MessageDelivered(5)
	m.HookCalled("MessageReceived", time.Millisecond, "timeout")
	m.PushResult("ios", "sent")
	m.BrokerResync("broker reconnected")
	got := gather(t, reg)
	check := func(name string, want float64, metric *dto.Metric) {
		t.Helper()
		if metric == nil {
			t.Errorf("%s: missing", name)
			return
		}
		var v float64
		switch {
		case metric.Counter != nil:
			v = metric.Counter.GetValue()
		case metric.Gauge != nil:
			v = metric.Gauge.GetValue()
		case metric.Histogram != nil:
			v = float64(metric.Histogram.GetSampleCount())
		}
		if v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	check("sockets_open", 1, got["leanhub_sockets_open"][0])
	check("sockets_opened", 2, got["leanhub_sockets_opened_total"][0])
	check("slow consumer closes", 1, labeled(got["leanhub_sockets_closed_total"], "reason", "slow_consumer"))
	check("direct", 2, labeled(got["leanhub_commands_total"], "cmd", "direct"))
	check("other", 1, labeled(got["leanhub_commands_total"], "cmd", "other"))
	check("4111", 1, labeled(got["leanhub_login_failures_total"], "code", "4111"))
	check("4999", 1, labeled(got["leanhub_login_failures_total"], "code", "4999"))
	check("stored", 3, got["leanhub_messages_stored_total"][0])
	check("commit", 1, got["leanhub_store_commit_seconds"][0])
	check("deliveries", 5, got["leanhub_deliveries_total"][0])
	check("hook timeout", 1, labeled(got["leanhub_hook_calls_total"], "outcome", "timeout"))
	check("push", 1, labeled(got["leanhub_push_total"], "platform", "ios"))
	check("resync", 1, labeled(got["leanhub_broker_resyncs_total"], "reason", "reconnected"))
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	m := prom.New()
	for name, f := range map[string]func(){
		"Command":          func() { m.Command("ack") },
		"MessageDelivered": func() { m.MessageDelivered(100) },
		"MessagesStored":   func() { m.MessagesStored(16, time.Millisecond) },
		"OutboundBacklog":  func() { m.OutboundBacklog(3) },
		"SocketClosed":     func() { m.SocketClosed("client") },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times per call", name, n)
		}
	}
}

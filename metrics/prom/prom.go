// Package prom implements hub.Metrics on Prometheus collectors.
//
//	m := prom.New()
//	reg := prometheus.NewRegistry()
//	if err := m.Register(reg); err != nil { ... }
//	h, _ := hub.New(st, &hub.Config{Metrics: m})
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Every metric is named leanhub_*; counters end in _total, latencies are
// _seconds histograms. Label values come from small fixed sets (command
// types, close reasons, login error codes, hook names, push platforms and
// outcomes). The children of the labels the hub's hot paths use are
// resolved in New, so recording a command, a delivery or a store batch is
// a map read and atomic adds, without allocation.
//
// A Metrics is safe for concurrent use. Register it on one registry; give
// each hub of a process its own Metrics and registry (or a
// prometheus.WrapRegistererWith label) if a process runs several.
package prom

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/wire"
)

// Metrics is a hub.Metrics on Prometheus collectors. Create it with New.
type Metrics struct {
	socketsOpen    prometheus.Gauge
	socketsOpened  prometheus.Counter
	socketsClosed  *prometheus.CounterVec
	closedBy       map[string]prometheus.Counter
	sessionsOpen   prometheus.Gauge
	sessionsOpened prometheus.Counter
	loginFailures  *prometheus.CounterVec
	loginBy        map[int]prometheus.Counter
	commands       *prometheus.CounterVec
	commandBy      map[string]prometheus.Counter
	stored         prometheus.Counter
	batchSize      prometheus.Histogram
	commitSeconds  prometheus.Histogram
	delivered      prometheus.Counter
	deliveries     prometheus.Counter
	fanout         prometheus.Histogram
	cursorsWritten prometheus.Counter
	cursorLag      prometheus.Histogram
	backlog        prometheus.Histogram
	hookSeconds    *prometheus.HistogramVec
	hookCalls      *prometheus.CounterVec
	push           *prometheus.CounterVec
	brokerEvents   prometheus.Counter
	brokerFailures prometheus.Counter
	brokerPublish  prometheus.Histogram
	brokerLag      prometheus.Histogram
	brokerResyncs  *prometheus.CounterVec
	hookMu         sync.RWMutex
	hookObs        map[string]hookChildren
	all            []prometheus.Collector
}

type hookChildren struct {
	seconds               prometheus.Observer
	ok, err, timeout, pan prometheus.Counter
}

var _ hub.Metrics = (*Metrics)(nil)

// closeReasons are the reasons hub.Metrics.SocketClosed gives.
var closeReasons = []string{"client", "slow_consumer", "ping_timeout", "login_timeout", "shutdown", "kicked", "resync", "protocol", "write_error"}

// loginCodes are the codes a login is commonly refused with.
var loginCodes = []int{4100, 4102, 4103, 4111, 4112, 4116, 4200, 4500}

// latency buckets: 0.1 ms to 10 s.
var secondsBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New returns the collectors, unregistered.
func New() *Metrics {
	m := &Metrics{
		socketsOpen:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "leanhub_sockets_open", Help: "Websockets open."}),
		socketsOpened:  prometheus.NewCounter(prometheus.CounterOpts{Name: "leanhub_sockets_opened_total", Help: "Websockets accepted."}),
		socketsClosed:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leanhub_sockets_closed_total", Help: "Websockets closed, by reason (slow_consumer: its outbound queue filled up)."}, []string{"reason"}),
		sessionsOpen:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "leanhub_sessions_open", Help: "Sessions (client ids logged in) open."}),
		sessionsOpened: prometheus.NewCounter(prometheus.CounterOpts{Name: "leanhub_sessions_opened_total", Help: "Sessions opened (successful logins)."}),
		loginFailures:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leanhub_login_failures_total", Help: "Session opens refused, by LeanCloud error code."}, []string{"code"}),
		commands:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leanhub_commands_total", Help: "Commands read from sockets, by type."}, []string{"cmd"}),
		stored:         prometheus.NewCounter(prometheus.CounterOpts{Name: "leanhub_messages_stored_total", Help: "Messages handed to the store (group-commit batches' sizes summed)."}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "leanhub_store_batch_messages", Help: "Messages per group-commit store call.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "leanhub_store_commit_seconds", Help: "Latency of one group-commit store call.", Buckets: secondsBuckets}),
		delivered:     prometheus.NewCounter(prometheus.CounterOpts{Name: "leanhub_messages_delivered_total", Help: "Messages pushed to this node's live sessions (each counted once)."}),
		deliveries:    prometheus.NewCounter(prometheus.CounterOpts{Name: "leanhub_deliveries_total", Help: "Message frames queued to sockets (fan-out summed)."}),
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "leanhub_fanout_sockets", Help: "Sockets one message was queued to on this node.",
			Buckets: []float64{0, 1, 2, 5, 10, 50, 100, 500, 1000, 5000, 20000}}),
		cursorsWritten: prometheus.NewCounter(prometheus.CounterOpts{Name: "leanhub_cursors_written_total", Help: "Delivered/read cursors written to the store (acks and reads coalesced)."}),
		cursorLag:      prometheus.NewHistogram(prometheus.HistogramOpts{Name: "leanhub_cursor_write_lag_seconds", Help: "Age of the oldest cursor move in a cursor write.", Buckets: secondsBuckets}),
		backlog: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "leanhub_outbound_backlog_frames", Help: "Frames a socket's writer found queued when it woke (outbound queue depth).",
			Buckets: []float64{1, 2, 4, 8, 16, 64, 256, 1024}}),
		hookSeconds:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "leanhub_hook_seconds", Help: "Latency of hook calls, by hook.", Buckets: secondsBuckets}, []string{"hook"}),
		hookCalls:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leanhub_hook_calls_total", Help: "Hook calls, by hook and outcome (ok, error, timeout, panic)."}, []string{"hook", "outcome"}),
		push:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leanhub_push_total", Help: "Push delivery attempts, by device platform and outcome (sent, retried, failed, expired)."}, []string{"platform", "outcome"}),
		brokerEvents:   prometheus.NewCounter(prometheus.CounterOpts{Name: "leanhub_broker_published_events_total", Help: "Events published to the other nodes."}),
		brokerFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "leanhub_broker_publish_failures_total", Help: "Failed publishes to the broker."}),
		brokerPublish:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "leanhub_broker_publish_seconds", Help: "Latency of one broker publish (a batch of events).", Buckets: secondsBuckets}),
		brokerLag:      prometheus.NewHistogram(prometheus.HistogramOpts{Name: "leanhub_broker_receive_lag_seconds", Help: "Age of messages received from other nodes (now minus their server timestamp).", Buckets: secondsBuckets}),
		brokerResyncs:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leanhub_broker_resyncs_total", Help: "Resynchronizations after events may have been missed (sockets told to reconnect)."}, []string{"reason"}),
		closedBy:       map[string]prometheus.Counter{},
		loginBy:        map[int]prometheus.Counter{},
		commandBy:      map[string]prometheus.Counter{},
		hookObs:        map[string]hookChildren{},
	}
	for _, r := range closeReasons {
		m.closedBy[r] = m.socketsClosed.WithLabelValues(r)
	}
	for _, c := range loginCodes {
		m.loginBy[c] = m.loginFailures.WithLabelValues(strconv.Itoa(c))
	}
	for _, name := range wire.CommandType_name {
		m.commandBy[name] = m.commands.WithLabelValues(name)
	}
	m.all = []prometheus.Collector{m.socketsOpen, m.socketsOpened, m.socketsClosed, m.sessionsOpen, m.sessionsOpened,
		m.loginFailures, m.commands, m.stored, m.batchSize, m.commitSeconds, m.delivered, m.deliveries, m.fanout,
		m.cursorsWritten, m.cursorLag, m.backlog, m.hookSeconds, m.hookCalls, m.push,
		m.brokerEvents, m.brokerFailures, m.brokerPublish, m.brokerLag, m.brokerResyncs}
	return m
}

// Register registers every collector on r.
func (m *Metrics) Register(r prometheus.Registerer) error {
	for _, c := range m.all {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Collectors returns the collectors, for a caller registering them itself.
func (m *Metrics) Collectors() []prometheus.Collector { return m.all }

func (m *Metrics) SocketOpened() {
	m.socketsOpened.Inc()
	m.socketsOpen.Inc()
}

func (m *Metrics) SocketClosed(reason string) {
	m.socketsOpen.Dec()
	if c, ok := m.closedBy[reason]; ok {
		c.Inc()
		return
	}
	m.socketsClosed.WithLabelValues(reason).Inc()
}

func (m *Metrics) SessionOpened() {
	m.sessionsOpened.Inc()
	m.sessionsOpen.Inc()
}

func (m *Metrics) SessionClosed() { m.sessionsOpen.Dec() }

func (m *Metrics) LoginFailed(code int) {
	if c, ok := m.loginBy[code]; ok {
		c.Inc()
		return
	}
	m.loginFailures.WithLabelValues(strconv.Itoa(code)).Inc()
}

func (m *Metrics) Command(cmd string) {
	if c, ok := m.commandBy[cmd]; ok {
		c.Inc()
		return
	}
	m.commands.WithLabelValues("other").Inc()
}

func (m *Metrics) MessagesStored(batch int, took time.Duration) {
	m.stored.Add(float64(batch))
	m.batchSize.Observe(float64(batch))
	m.commitSeconds.Observe(took.Seconds())
}

func (m *Metrics) MessageDelivered(fanout int) {
	m.delivered.Inc()
	m.deliveries.Add(float64(fanout))
	m.fanout.Observe(float64(fanout))
}

func (m *Metrics) CursorsWritten(cursors int, lag time.Duration) {
	m.cursorsWritten.Add(float64(cursors))
	m.cursorLag.Observe(lag.Seconds())
}

func (m *Metrics) OutboundBacklog(frames int) { m.backlog.Observe(float64(frames)) }

func (m *Metrics) HookCalled(hook string, took time.Duration, outcome string) {
	m.hookMu.RLock()
	hc, ok := m.hookObs[hook]
	m.hookMu.RUnlock()
	if !ok {
		hc = hookChildren{
			seconds: m.hookSeconds.WithLabelValues(hook),
			ok:      m.hookCalls.WithLabelValues(hook, "ok"),
			err:     m.hookCalls.WithLabelValues(hook, "error"),
			timeout: m.hookCalls.WithLabelValues(hook, "timeout"),
			pan:     m.hookCalls.WithLabelValues(hook, "panic"),
		}
		m.hookMu.Lock()
		m.hookObs[hook] = hc
		m.hookMu.Unlock()
	}
	hc.seconds.Observe(took.Seconds())
	switch outcome {
	case "ok":
		hc.ok.Inc()
	case "error":
		hc.err.Inc()
	case "timeout":
		hc.timeout.Inc()
	case "panic":
		hc.pan.Inc()
	default:
		m.hookCalls.WithLabelValues(hook, outcome).Inc()
	}
}

func (m *Metrics) PushResult(platform, outcome string) {
	m.push.WithLabelValues(platform, outcome).Inc()
}

func (m *Metrics) BrokerPublished(events int, took time.Duration, err error) {
	m.brokerEvents.Add(float64(events))
	m.brokerPublish.Observe(took.Seconds())
	if err != nil {
		m.brokerFailures.Inc()
	}
}

func (m *Metrics) BrokerReceived(lag time.Duration) { m.brokerLag.Observe(max(lag, 0).Seconds()) }

func (m *Metrics) BrokerResync(reason string) {
	// Reasons are free text from brokers: keep the label set small.
	label := "lost"
	switch reason {
	case "receive queue overflowed":
		label = "overflow"
	case "broker reconnected":
		label = "reconnected"
	}
	m.brokerResyncs.WithLabelValues(label).Inc()
}

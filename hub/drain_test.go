package hub_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

func TestDrainGoesUnreadySendsGoawayAndClosesWithinItsDeadline(t *testing.T) {
	st := backends(t)["sqlite"](t)
	srv := newServer(t, st, nil)
	ctx := ctxT(t)
	var clients []*lcclient.Client
	for _, id := range []string{"drain-a", "drain-b", "drain-c"} {
		clients = append(clients, srv.Login(t, id))
	}
	if !srv.Hub.Ready() {
		t.Fatal("not ready before Drain")
	}
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Hub.Drain(dctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Drain took %v, past its deadline", took)
	}
	if srv.Hub.Ready() {
		t.Fatal("still ready after Drain")
	}
	if n := srv.Hub.SocketCount(); n != 0 {
		t.Fatalf("%d sockets left after Drain", n)
	}
	for _, c := range clients {
		if _, err := c.NextOf(ctx, wire.CommandType_goaway); err != nil {
			t.Fatalf("no goaway: %v", err)
		}
		<-c.Done()
		if s := c.CloseStatus(); s != websocket.StatusGoingAway {
			t.Fatalf("close status %v, want going away", s)
		}
	}
	if _, err := lcclient.Dial(ctx, srv.WebsocketURL()); err == nil {
		t.Fatal("a new socket was accepted while draining")
	}
}

// countingMetrics counts the calls the tests look at.
type countingMetrics struct {
	hub.NopMetrics
	mu                        sync.Mutex
	opened, closed            int
	sessions, sessionsClosed  int
	loginFailed               map[int]int
	commands                  map[string]int
	stored, delivered, fanout int
	closeReasons              map[string]int
}

func (m *countingMetrics) SocketOpened() { m.mu.Lock(); m.opened++; m.mu.Unlock() }
func (m *countingMetrics) SocketClosed(r string) {
	m.mu.Lock()
	m.closed++
	m.closeReasons[r]++
	m.mu.Unlock()
}
func (m *countingMetrics) SessionOpened()    { m.mu.Lock(); m.sessions++; m.mu.Unlock() }
func (m *countingMetrics) SessionClosed()    { m.mu.Lock(); m.sessionsClosed++; m.mu.Unlock() }
func (m *countingMetrics) LoginFailed(c int) { m.mu.Lock(); m.loginFailed[c]++; m.mu.Unlock() }
func (m *countingMetrics) Command(c string)  { m.mu.Lock(); m.commands[c]++; m.mu.Unlock() }
func (m *countingMetrics) MessagesStored(n int, _ time.Duration) {
	m.mu.Lock()
	m.stored += n
	m.mu.Unlock()
}
func (m *countingMetrics) MessageDelivered(n int) {
	m.mu.Lock()
	m.delivered++
	m.fanout += n
	m.mu.Unlock()
}

func TestMetricsSeeSocketsSessionsLoginsCommandsAndMessages(t *testing.T) {
	m := &countingMetrics{loginFailed: map[int]int{}, commands: map[string]int{}, closeReasons: map[string]int{}}
	st := backends(t)["sqlite"](t)
	srv := newServer(t, st, &hub.Config{AppID: "metrics-app", Metrics: m})
	ctx := ctxT(t)
	tom := srv.Login(t, "m-tom")
	jerry := srv.Login(t, "m-jerry")
	cid, err := tom.StartConversation(ctx, "m-jerry")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := tom.SendText(ctx, cid, text("hi")); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if _, err := jerry.NextMessage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	bad, err := lcclient.Dial(ctx, srv.WebsocketURL())
	if err != nil {
		t.Fatal(err)
	}
	bad.AppID = "other-app"
	if _, err := bad.Open(ctx, "m-bad", lcclient.OpenOptions{}); err == nil {
		t.Fatal("login for another app id succeeded")
	}
	bad.Close()
	tom.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		done := m.closed >= 2
		m.mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.opened != 3 || m.closed != 2 {
		t.Errorf("sockets opened %d closed %d, want 3 and 2", m.opened, m.closed)
	}
	if m.sessions != 2 || m.sessionsClosed != 1 {
		t.Errorf("sessions opened %d closed %d, want 2 and 1", m.sessions, m.sessionsClosed)
	}
	if m.loginFailed[4100] != 1 {
		t.Errorf("login failures %v, want one 4100", m.loginFailed)
	}
	if m.commands["direct"] != 3 || m.commands["session"] < 3 {
		t.Errorf("commands %v, want 3 direct and at least 3 session", m.commands)
	}
	if m.stored != 3 || m.delivered != 3 || m.fanout != 3 {
		t.Errorf("stored %d delivered %d fanout %d, want 3 3 3", m.stored, m.delivered, m.fanout)
	}
}

package hub_test

import (
	"context"
	"testing"
	"time"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/hub/hubtest"
	"github.com/leanhub/realtime/internal/lcclient"
	"github.com/leanhub/realtime/internal/wire"
)

// testServer is a hub on an httptest.Server whose clients speak the
// protocol at the wire level (lcclient), for tests that look at commands
// and fields the domain-typed hubtest client does not expose.
type testServer struct {
	*hubtest.Server
	store realtime.Store // the store behind the hub, for checks the hub's read-only view does not offer
}

func newServer(t testing.TB, st realtime.Store, cfg *hub.Config) *testServer {
	t.Helper()
	return &testServer{hubtest.NewServer(t, st, cfg), st}
}

// Login dials a socket and opens a session for clientID; the socket is
// closed when the test ends.
func (s *testServer) Login(t testing.TB, clientID string, opts ...lcclient.Option) *lcclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := lcclient.Dial(ctx, s.WebsocketURL(), opts...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(c.Close)
	c.AppID = s.AppID
	if _, err := c.Open(ctx, clientID, lcclient.OpenOptions{}); err != nil {
		t.Fatalf("open %s: %v", clientID, err)
	}
	return c
}

func noMore(t *testing.T, c *lcclient.Client, typ wire.CommandType, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if p, err := c.NextOf(ctx, typ); err == nil {
		t.Fatalf("%s: unexpected push %v", what, p)
	}
}

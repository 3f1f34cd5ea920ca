package hub

import (
	"context"
	"time"

	"github.com/coder/websocket"

	realtime "github.com/leanhub/realtime"
)

// keeper is the hub's one goroutine for socket timers: it pings sockets
// that were quiet for PingInterval (closing those that do not answer
// within PingTimeout, which fires their clients' will messages) and closes
// sockets that had no session for LoginTimeout (never logged in, or logged
// out of every client and stayed). One sweep over the sockets every
// fraction of those intervals costs less than a timer per socket.
func (h *Hub) keeper() {
	defer h.wg.Done()
	tick := min(h.cfg.PingInterval, h.cfg.LoginTimeout) / 4
	tick = max(tick, 10*time.Millisecond)
	tick = min(tick, 5*time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	var conns []*conn
	lastSweep := time.Now()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(lastSweep) > 30*time.Second {
			h.limits.sweep()
			h.revoked.forgetBefore(h.now().Add(-h.cfg.SessionTokenTTL).UnixMicro())
			lastSweep = time.Now()
		}
		conns = conns[:0]
		h.mu.RLock()
		for c := range h.conns {
			conns = append(conns, c)
		}
		h.mu.RUnlock()
		now := time.Now()
		for _, c := range conns {
			h.keep(c, now)
		}
		clear(conns)
	}
}

func (h *Hub) keep(c *conn, now time.Time) {
	if c.closed() {
		return
	}
	if since := c.noSessionSince.Load(); since != 0 && now.Sub(time.Unix(0, since)) > h.cfg.LoginTimeout {
		c.closeWith(websocket.StatusCode(realtime.CodeLoginTimeout), "LOGIN_TIMEOUT", closeDrop)
		return
	}
	if now.Sub(time.Unix(0, c.lastRead.Load())) < h.cfg.PingInterval || c.pinging.Swap(true) {
		return
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer c.pinging.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.PingTimeout)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			if !c.closed() {
				h.log.Debug("ping failed; closing", "remote", c.remoteIP, "err", err)
			}
			c.closeWith(websocket.StatusGoingAway, "ping timeout", closeDrop)
			c.ws.CloseNow()
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
	}()
}

package hub

import (
	"net"
	"sync"
	"time"
)

// Rate limits. Every command family that writes or scans has a token
// bucket per client id, shared by all the client's sessions on this hub
// (several sockets or sessions do not multiply a client's rate), and
// logins and sockets are limited per source address. A command over its
// limit is refused with 4116 MESSAGE_SENT_QUOTA_EXCEEDED, LeanCloud's
// rate-limit code (acks and reads, which get no answer, are dropped). The
// application's own calls (Go API) are not limited.

// Rate is a token bucket: PerSecond tokens a second, at most Burst saved.
type Rate struct {
	PerSecond float64
	Burst     int
}

// family is a kind of command with a limit of its own.
type family int

const (
	famSend  family = iota // messages
	famConv                // conversation changes: create, members, update, mute, roles, blacklist
	famPatch               // edits and recalls (one token per item)
	famQuery               // queries, history, member lists, online status
	famRead                // client acks and reads
	numFamilies
)

type bucket struct {
	tokens float64
	last   time.Time
}

// take takes n tokens at now if there are that many.
func (b *bucket) take(r Rate, now time.Time, n float64) bool {
	if b.last.IsZero() {
		b.tokens = float64(r.Burst)
	} else {
		b.tokens = min(float64(r.Burst), b.tokens+now.Sub(b.last).Seconds()*r.PerSecond)
	}
	b.last = now
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// full reports whether the bucket would be full at now (so forgetting it
// changes nothing).
func (b *bucket) full(r Rate, now time.Time) bool {
	return b.last.IsZero() || b.tokens+now.Sub(b.last).Seconds()*r.PerSecond >= float64(r.Burst)
}

type clientLimits struct {
	buckets [numFamilies]bucket
}

type addrLimits struct {
	sockets int
	logins  bucket
}

// limiters holds the buckets of the clients and addresses seen recently.
type limiters struct {
	mu      sync.Mutex
	rates   [numFamilies]Rate
	login   Rate
	clients map[string]*clientLimits
	addrs   map[string]*addrLimits
	now     func() time.Time
}

func newLimiters(l *Limits, now func() time.Time) *limiters {
	lim := &limiters{clients: map[string]*clientLimits{}, addrs: map[string]*addrLimits{}, now: now, login: l.LoginRate}
	lim.rates[famSend] = Rate{l.SendRate, l.SendBurst}
	lim.rates[famConv] = l.ConversationRate
	lim.rates[famPatch] = l.PatchRate
	lim.rates[famQuery] = l.QueryRate
	lim.rates[famRead] = l.ReadRate
	return lim
}

// allow takes n tokens of family f from client's bucket.
func (l *limiters) allow(client string, f family, n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[client]
	if c == nil {
		c = &clientLimits{}
		l.clients[client] = c
	}
	return c.buckets[f].take(l.rates[f], l.now(), float64(n))
}

// perAddress reports whether addr is limited per address: loopback
// clients are not (a proxy on the same host without TrustForwardedFor
// would put every client in one bucket; load tests run there).
func perAddress(addr string) bool {
	ip := net.ParseIP(addr)
	return ip == nil || !ip.IsLoopback()
}

// openSocket counts a socket of addr; it reports false (and counts
// nothing) when addr has max sockets already.
func (l *limiters) openSocket(addr string, maxSockets int) bool {
	if !perAddress(addr) {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.addrs[addr]
	if a == nil {
		a = &addrLimits{}
		l.addrs[addr] = a
	}
	if a.sockets >= maxSockets {
		return false
	}
	a.sockets++
	return true
}

func (l *limiters) closeSocket(addr string) {
	if !perAddress(addr) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.addrs[addr]; a != nil && a.sockets > 0 {
		a.sockets--
	}
}

// allowLogin takes a login token of addr.
func (l *limiters) allowLogin(addr string) bool {
	if !perAddress(addr) {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.addrs[addr]
	if a == nil {
		a = &addrLimits{}
		l.addrs[addr] = a
	}
	return a.logins.take(l.login, l.now(), 1)
}

// sweep forgets clients and addresses whose buckets are full again (and
// addresses without sockets): their state is what a new entry would have.
func (l *limiters) sweep() {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for id, c := range l.clients {
		idle := true
		for f := range c.buckets {
			idle = idle && c.buckets[f].full(l.rates[f], now)
		}
		if idle {
			delete(l.clients, id)
		}
	}
	for addr, a := range l.addrs {
		if a.sockets == 0 && a.logins.full(l.login, now) {
			delete(l.addrs, addr)
		}
	}
}

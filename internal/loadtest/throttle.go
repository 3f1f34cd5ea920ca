package loadtest

import "time"

// Throttle coalesces per-conversation receipts (client acks, reads) the way
// the official SDKs do: the first message of a quiet conversation is
// answered at once (leading edge); later ones within Interval are gathered
// and sent together when Interval has passed since the last send (trailing
// edge), or at once when MaxPending of them are waiting. It is pure logic:
// the caller passes the time and arms a timer for the due time it is given.
// Not safe for concurrent use.
type Throttle struct {
	// Interval is the least time between two sends for one conversation.
	Interval time.Duration
	// MaxPending sends at once when that many messages are waiting (0: no
	// such limit).
	MaxPending int

	convs map[string]*pending
}

type pending struct {
	lastSent  time.Time
	sent      bool // lastSent is set
	n         int  // messages gathered since the last send
	fromTS    int64
	toTS      int64
	toMID     string // id of the message at toTS
	scheduled bool   // a trailing flush is due; the caller holds a timer
}

// Flush is one receipt to send: an ack {cid, fromts, tots} or a read
// {cid, timestamp: ToTS, mid: ToMID}.
type Flush struct {
	ConvID string
	FromTS int64
	ToTS   int64
	ToMID  string
	Count  int // messages it covers
}

// NewThrottle returns a throttle with the given interval and pending limit.
func NewThrottle(interval time.Duration, maxPending int) *Throttle {
	return &Throttle{Interval: interval, MaxPending: maxPending, convs: map[string]*pending{}}
}

// Add records a message of conversation cid at timestamp ts with id mid.
// It returns the flush to send now, if any; otherwise, when due is not
// zero, the caller must call Due(cid, t) at or after due (a timer) — due is
// returned only once per trailing window.
func (t *Throttle) Add(cid string, ts int64, mid string, now time.Time) (f Flush, send bool, due time.Time) {
	p := t.convs[cid]
	if p == nil {
		p = &pending{}
		t.convs[cid] = p
	}
	if p.n == 0 || ts < p.fromTS {
		p.fromTS = ts
	}
	if p.n == 0 || ts >= p.toTS {
		p.toTS, p.toMID = ts, mid
	}
	p.n++
	if !p.sent || now.Sub(p.lastSent) >= t.Interval || (t.MaxPending > 0 && p.n >= t.MaxPending) {
		return t.take(cid, p, now), true, time.Time{}
	}
	if p.scheduled {
		return Flush{}, false, time.Time{}
	}
	p.scheduled = true
	return Flush{}, false, p.lastSent.Add(t.Interval)
}

// Due is the timer's call for cid: it returns the flush to send, or, when
// an earlier send (MaxPending) moved the window, a new due time to wait
// for. With nothing pending it returns neither.
func (t *Throttle) Due(cid string, now time.Time) (f Flush, send bool, due time.Time) {
	p := t.convs[cid]
	if p == nil {
		return Flush{}, false, time.Time{}
	}
	if p.n == 0 {
		p.scheduled = false
		return Flush{}, false, time.Time{}
	}
	if next := p.lastSent.Add(t.Interval); now.Before(next) {
		return Flush{}, false, next // stays scheduled
	}
	p.scheduled = false
	return t.take(cid, p, now), true, time.Time{}
}

// Pending is the number of messages waiting for conversation cid.
func (t *Throttle) Pending(cid string) int {
	if p := t.convs[cid]; p != nil {
		return p.n
	}
	return 0
}

func (t *Throttle) take(cid string, p *pending, now time.Time) Flush {
	f := Flush{ConvID: cid, FromTS: p.fromTS, ToTS: p.toTS, ToMID: p.toMID, Count: p.n}
	p.n, p.fromTS, p.toTS, p.toMID = 0, 0, 0, ""
	p.lastSent, p.sent = now, true
	return f
}

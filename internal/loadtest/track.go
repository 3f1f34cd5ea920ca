package loadtest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ExactlyOnce is the delivery check of fanout and pairs: every acked
// message must reach every expected receiver exactly once.
type ExactlyOnce struct {
	// Missing counts (receiver, acked message) pairs never received.
	Missing int64 `json:"missing"`
	// Duplicates counts deliveries beyond the first.
	Duplicates int64 `json:"duplicates"`
	// IDMismatch counts deliveries whose id differs from the acked id or
	// from another receiver's copy.
	IDMismatch int64 `json:"id_mismatch"`
	// RefusedButDelivered counts messages the server refused with an error
	// code that were delivered anyway.
	RefusedButDelivered int64 `json:"refused_but_delivered"`
	// UnackedDelivered counts messages whose ack never came (timeout,
	// dropped socket) that were delivered: not a failure, the sender does
	// not know.
	UnackedDelivered int64 `json:"unacked_delivered"`
	// Recovered counts messages a reconnected receiver got from history.
	Recovered int64 `json:"recovered_from_history"`
	// OutOfOrder counts live deliveries older than the receiver's previous
	// one in the same conversation.
	OutOfOrder int64 `json:"out_of_order"`
	// Foreign counts deliveries that were not this run's messages.
	Foreign  int64    `json:"foreign"`
	Examples []string `json:"examples,omitempty"`
}

// Failed tells whether the check found a failure.
func (x *ExactlyOnce) Failed() bool {
	return x.Missing > 0 || x.Duplicates > 0 || x.IDMismatch > 0 || x.RefusedButDelivered > 0
}

func (x *ExactlyOnce) String() string {
	s := fmt.Sprintf("missing %d, duplicates %d, id mismatches %d, refused-but-delivered %d", x.Missing, x.Duplicates, x.IDMismatch, x.RefusedButDelivered)
	if x.UnackedDelivered > 0 {
		s += fmt.Sprintf(", unacked-but-delivered %d", x.UnackedDelivered)
	}
	if x.Recovered > 0 {
		s += fmt.Sprintf(", recovered from history %d", x.Recovered)
	}
	if x.OutOfOrder > 0 {
		s += fmt.Sprintf(", out of order %d", x.OutOfOrder)
	}
	if x.Foreign > 0 {
		s += fmt.Sprintf(", foreign %d", x.Foreign)
	}
	for _, e := range x.Examples {
		s += "\n    e.g. " + e
	}
	return s
}

func (x *ExactlyOnce) example(format string, args ...any) {
	if len(x.Examples) < 10 {
		x.Examples = append(x.Examples, fmt.Sprintf(format, args...))
	}
}

// Slot states.
const (
	slotSent int32 = iota + 1
	slotAcked
	slotRefused // an error code: not stored
	slotUnknown // no ack (timeout, socket gone)
)

// slots tracks the messages of a run: one slot per message, expecting
// receivers deliveries each. A slot is finished when its ack came and
// every receiver has it (or when its send failed); finishing releases its
// window place.
type slots struct {
	n         int
	receivers int32
	sentNS    []int64
	state     []atomic.Int32
	ackID     []string // written before state becomes slotAcked
	remaining []atomic.Int32
	finished  []atomic.Bool
	firstID   []atomic.Pointer[string]
	onFinish  func(slot int)

	acked, refused, unknown atomic.Int64
	deliveries              atomic.Int64 // first deliveries
	dups, idMismatch        atomic.Int64
	recovered, foreign      atomic.Int64
	outOfOrder              atomic.Int64
	nFinished               atomic.Int64
	firstSend, lastDelivery atomic.Int64 // Unix ns
	lastAck                 atomic.Int64
	allDone                 chan struct{}
	doneOnce                sync.Once
}

func newSlots(n, receivers int, onFinish func(int)) *slots {
	s := &slots{n: n, receivers: int32(receivers), sentNS: make([]int64, n), state: make([]atomic.Int32, n),
		ackID: make([]string, n), remaining: make([]atomic.Int32, n), finished: make([]atomic.Bool, n),
		firstID: make([]atomic.Pointer[string], n), onFinish: onFinish, allDone: make(chan struct{})}
	for i := range s.remaining {
		s.remaining[i].Store(int32(receivers) + 1) // deliveries and the ack
	}
	if n == 0 {
		close(s.allDone)
	}
	return s
}

func (s *slots) sent(slot int, at int64) {
	s.sentNS[slot] = at
	s.state[slot].Store(slotSent)
	atomicMin(&s.firstSend, at)
}

func (s *slots) ack(slot int, id string, at int64) {
	s.ackID[slot] = id
	s.state[slot].Store(slotAcked)
	s.acked.Add(1)
	atomicMax(&s.lastAck, at)
	s.step(slot)
}

// failed records a send without a positive ack; refused is an error code
// (the message was not stored).
func (s *slots) failed(slot int, refused bool) {
	if refused {
		s.state[slot].Store(slotRefused)
		s.refused.Add(1)
	} else {
		s.state[slot].Store(slotUnknown)
		s.unknown.Add(1)
	}
	s.finish(slot)
}

func (s *slots) step(slot int) {
	if s.remaining[slot].Add(-1) == 0 {
		s.finish(slot)
	}
}

func (s *slots) finish(slot int) {
	if !s.finished[slot].CompareAndSwap(false, true) {
		return
	}
	if s.onFinish != nil {
		s.onFinish(slot)
	}
	if s.nFinished.Add(1) == int64(s.n) {
		s.doneOnce.Do(func() { close(s.allDone) })
	}
}

// checkID compares a delivered id with the first one seen for the slot.
func (s *slots) checkID(slot int, id string) {
	p := s.firstID[slot].Load()
	if p == nil {
		if s.firstID[slot].CompareAndSwap(nil, &id) {
			return
		}
		p = s.firstID[slot].Load()
	}
	if *p != id {
		s.idMismatch.Add(1)
	}
}

// receiver is one receiving client's record: counts per slot of its
// expected messages (low 7 bits live deliveries, 0x80 got from history).
type receiver struct {
	mu     sync.Mutex
	counts []uint8
	lastTS int64
	lat    *Shard
}

const fromHistory = 0x80

// live records a live delivery of slot (index idx in r.counts) at `at`
// sent at sentNS; it returns whether it was the first copy.
func (s *slots) live(r *receiver, idx, slot int, id string, ts, sentNS int64, at time.Time) {
	r.mu.Lock()
	c := r.counts[idx]
	if c&0x7f < 0x7f {
		r.counts[idx] = c + 1
	}
	if ts < r.lastTS {
		s.outOfOrder.Add(1)
	} else {
		r.lastTS = ts
	}
	if c == 0 {
		r.lat.Add(at.Sub(time.Unix(0, sentNS)))
	}
	r.mu.Unlock()
	s.checkID(slot, id)
	switch {
	case c == 0:
		s.deliveries.Add(1)
		atomicMax(&s.lastDelivery, at.UnixNano())
		s.step(slot)
	case c&0x7f > 0:
		s.dups.Add(1)
	}
	// c == fromHistory: the live copy of a message history already gave.
}

// history records slot got from history after a reconnect.
func (s *slots) history(r *receiver, idx, slot int, id string, ts int64) {
	r.mu.Lock()
	c := r.counts[idx]
	if c == 0 {
		r.counts[idx] = fromHistory
		r.lastTS = max(r.lastTS, ts)
	}
	r.mu.Unlock()
	if c != 0 {
		return
	}
	s.checkID(slot, id)
	s.recovered.Add(1)
	s.deliveries.Add(1)
	atomicMax(&s.lastDelivery, time.Now().UnixNano())
	s.step(slot)
}

// check fills x from the receivers' counts; slotOf maps a receiver's
// count index to its slot.
func (s *slots) check(x *ExactlyOnce, names []string, rs []*receiver, slotOf func(r, idx int) int) {
	x.Duplicates = s.dups.Load()
	x.IDMismatch = s.idMismatch.Load()
	x.Recovered = s.recovered.Load()
	x.Foreign = s.foreign.Load()
	x.OutOfOrder = s.outOfOrder.Load()
	for slot := range s.n {
		if s.state[slot].Load() == slotAcked {
			if p := s.firstID[slot].Load(); p != nil && *p != s.ackID[slot] {
				x.IDMismatch++
				x.example("message %d acked as %s, delivered as %s", slot, s.ackID[slot], *p)
			}
		}
	}
	refused := map[int]bool{}
	unacked := map[int]bool{}
	for ri, r := range rs {
		r.mu.Lock()
		for idx, c := range r.counts {
			slot := slotOf(ri, idx)
			switch s.state[slot].Load() {
			case slotAcked:
				if c == 0 {
					x.Missing++
					x.example("%s never got message %d (%s)", names[ri], slot, s.ackID[slot])
				}
				if c&0x7f > 1 {
					x.example("%s got message %d %d times", names[ri], slot, c&0x7f)
				}
			case slotRefused:
				if c != 0 && !refused[slot] {
					refused[slot] = true
					x.RefusedButDelivered++
					x.example("message %d was refused yet delivered to %s", slot, names[ri])
				}
			case slotUnknown:
				if c != 0 && !unacked[slot] {
					unacked[slot] = true
					x.UnackedDelivered++
				}
			}
		}
		r.mu.Unlock()
	}
}

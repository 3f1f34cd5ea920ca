package hub

import (
	"runtime/debug"
)

// taskPool runs work that reads the store for one request (history,
// queries, login sync) off the socket read loops, with a bound on how many
// run at once. A full pool makes goTask wait: the socket whose command it
// is stops being read (TCP pushes back on that client), and the others go
// on. Every task is a goroutine owned by the hub (Shutdown waits for it).
type taskPool struct {
	h   *Hub
	sem chan struct{}
}

func newTaskPool(h *Hub, size int) *taskPool {
	return &taskPool{h: h, sem: make(chan struct{}, size)}
}

// run runs f on the calling goroutine once a slot is free (or not at all
// once the hub stops). A panic in f is logged.
func (p *taskPool) run(f func()) {
	select {
	case p.sem <- struct{}{}:
	case <-p.h.ctx.Done():
		return
	}
	defer func() { <-p.sem }()
	defer func() {
		if r := recover(); r != nil {
			p.h.log.Error("panic in a request task", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	f()
}

// goTask runs f in a goroutine once a slot is free. A panic in f is logged.
func (p *taskPool) goTask(f func()) {
	select {
	case p.sem <- struct{}{}:
	case <-p.h.ctx.Done():
		return
	}
	p.h.wg.Add(1)
	go func() {
		defer p.h.wg.Done()
		defer func() { <-p.sem }()
		defer func() {
			if r := recover(); r != nil {
				p.h.log.Error("panic in a request task", "panic", r, "stack", string(debug.Stack()))
			}
		}()
		f()
	}()
}

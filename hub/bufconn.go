package hub

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Write batching. The protocol carries one command per frame, so a busy
// socket cannot pack messages into frames; it can pack frames into
// syscalls. The websocket library writes each frame to the connection it
// hijacked; batchConn sits under it and, while the socket's writer goroutine
// drains a backlog (begin ... end), collects those writes and sends them in
// one write when the backlog is drained or batchFlushSize is reached. Outside
// a batch (pongs and close frames written by other goroutines, a lone push)
// writes go straight through.
const batchFlushSize = 32 << 10

type batchConn struct {
	net.Conn
	timeout time.Duration

	mu       sync.Mutex
	batching bool
	buf      []byte
	err      error // sticky write error
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if !b.batching {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		return b.Conn.Write(p)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= batchFlushSize {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// begin starts collecting writes.
func (b *batchConn) begin() {
	b.mu.Lock()
	b.batching = true
	b.mu.Unlock()
}

// end sends what was collected and lets writes through again.
func (b *batchConn) end() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batching = false
	return b.flushLocked()
}

func (b *batchConn) flushLocked() error {
	if len(b.buf) == 0 || b.err != nil {
		return b.err
	}
	if b.timeout > 0 {
		_ = b.Conn.SetWriteDeadline(time.Now().Add(b.timeout))
	}
	_, err := b.Conn.Write(b.buf)
	if b.timeout > 0 {
		_ = b.Conn.SetWriteDeadline(time.Time{})
	}
	b.buf = b.buf[:0]
	if cap(b.buf) > 4*batchFlushSize {
		b.buf = nil // do not keep a burst's memory for an idle socket
	}
	if err != nil {
		b.err = err
	}
	return err
}

// hijackBatcher is the http.ResponseWriter handed to websocket.Accept: its
// Hijack returns the connection wrapped in a batchConn.
type hijackBatcher struct {
	http.ResponseWriter
	timeout time.Duration
	conn    *batchConn
}

func (w *hijackBatcher) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hub: response writer cannot hijack")
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &batchConn{Conn: c, timeout: w.timeout}
	// The library writes through brw.Writer: point it at the batcher. The
	// 101 response was flushed by Hijack, so nothing is lost.
	brw.Writer.Reset(w.conn)
	return w.conn, brw, nil
}

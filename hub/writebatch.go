package hub

import (
	"bufio"
	"bytes"
	"errors"
	"io"
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
// a batch (pongs and close frames written by other goroutines) writes go
// straight through. The batch buffer comes from a pool and goes back after
// every flush: an idle socket holds none.
const batchFlushSize = 32 << 10

// Per-socket buffers: reads of a frame larger than the read buffer go
// straight into the frame; the writer's buffer only stages a frame on its
// way to the batchConn.
const (
	socketReadBuffer  = 512
	socketWriteBuffer = 256
)

var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, batchFlushSize+4<<10); return &b }}

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
	if b.buf == nil {
		b.buf = (*batchBufs.Get().(*[]byte))[:0]
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
	err := b.flushLocked()
	if b.buf != nil {
		if cap(b.buf) <= 4*batchFlushSize {
			buf := b.buf[:0]
			batchBufs.Put(&buf)
		}
		b.buf = nil
	}
	return err
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
	if err != nil {
		b.err = err
	}
	return err
}

// hijackBatcher is the http.ResponseWriter handed to websocket.Accept: its
// Hijack returns the connection wrapped in a batchConn, with small buffers
// instead of net/http's 4 KiB ones (frames are small, the batchConn
// gathers writes, and every idle socket keeps its buffers).
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
	// Bytes the client sent right after its upgrade request are in
	// brw.Reader's buffer: they must be in the new reader's buffer too
	// (the library keeps what is buffered and reads the rest from the
	// connection).
	var br *bufio.Reader
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), c), max(socketReadBuffer, n))
		if _, err := br.Peek(n); err != nil {
			return nil, nil, err
		}
	} else {
		br = bufio.NewReaderSize(c, socketReadBuffer)
	}
	// The library writes through the Writer: point it at the batcher. The
	// 101 response was flushed by Hijack, so nothing is lost.
	return w.conn, bufio.NewReadWriter(br, bufio.NewWriterSize(w.conn, socketWriteBuffer)), nil
}

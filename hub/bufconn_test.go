package hub

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// countingConn records each Write the batcher makes to the network.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}
func (c *countingConn) SetWriteDeadline(time.Time) error { return nil }

func TestBatchConnCollectsWritesInABatchOnly(t *testing.T) {
	under := &countingConn{}
	b := &batchConn{Conn: under, timeout: time.Second}
	b.Write([]byte("pong")) // outside a batch: straight through
	if len(under.writes) != 1 {
		t.Fatalf("unbatched write was held: %d writes", len(under.writes))
	}
	b.begin()
	for i := 0; i < 100; i++ {
		b.Write([]byte("frame"))
	}
	if len(under.writes) != 1 {
		t.Fatalf("batched writes leaked early: %d writes", len(under.writes))
	}
	if err := b.end(); err != nil {
		t.Fatal(err)
	}
	if len(under.writes) != 2 || !bytes.Equal(under.writes[1], bytes.Repeat([]byte("frame"), 100)) {
		t.Fatalf("batch flushed as %d writes", len(under.writes)-1)
	}
	// A batch over the flush size goes out in pieces of about that size.
	b.begin()
	chunk := make([]byte, 1000)
	for i := 0; i < 100; i++ {
		b.Write(chunk)
	}
	b.end()
	total := 0
	for _, w := range under.writes[2:] {
		total += len(w)
		if len(w) > batchFlushSize+len(chunk) {
			t.Fatalf("write of %d bytes exceeds the flush size", len(w))
		}
	}
	if total != 100*len(chunk) || len(under.writes[2:]) < 3 {
		t.Fatalf("%d bytes in %d writes", total, len(under.writes[2:]))
	}
}

package hub

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/leanhub/realtime/internal/wire"
	"github.com/leanhub/realtime/store"
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

// A client may send its first frame in the same packet as its upgrade
// request; the hijacked connection must not lose those bytes.
func TestFirstFrameSentWithTheUpgradeRequestIsRead(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, err := New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())

	open, err := proto.Marshal(&wire.GenericCommand{Cmd: wire.CommandType_session.Enum(), Op: wire.OpType_open.Enum(),
		I: proto.Int32(1), AppId: proto.String("x"), PeerId: proto.String("Tom"), SessionMessage: &wire.SessionCommand{}})
	if err != nil {
		t.Fatal(err)
	}
	// One masked binary frame (RFC 6455 5.2), payload < 126 bytes.
	mask := [4]byte{1, 2, 3, 4}
	frame := []byte{0x82, 0x80 | byte(len(open))}
	frame = append(frame, mask[:]...)
	for i, b := range open {
		frame = append(frame, b^mask[i%4])
	}
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /ws HTTP/1.1\r\nHost: " + srv.Listener.Addr().String() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: lc.protobuf2.3\r\n\r\n"
	if _, err := nc.Write(append([]byte(req), frame...)); err != nil { // one write: one packet on loopback
		t.Fatal(err)
	}
	r := bufio.NewReader(nc)
	res, err := http.ReadResponse(r, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", res, err)
	}
	// The reply: an unmasked binary frame.
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(r, hdr); err != nil {
		t.Fatal(err)
	}
	n := int(hdr[1] & 0x7f)
	if n == 126 {
		ext := make([]byte, 2)
		io.ReadFull(r, ext)
		n = int(ext[0])<<8 | int(ext[1])
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		t.Fatal(err)
	}
	var got wire.GenericCommand
	if err := proto.Unmarshal(payload, &got); err != nil {
		t.Fatal(err)
	}
	if got.GetOp() != wire.OpType_opened || got.GetI() != 1 {
		t.Fatalf("reply to the early frame = %v, want session opened", &got)
	}
}

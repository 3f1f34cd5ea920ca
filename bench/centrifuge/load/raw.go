package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/gorilla/websocket"
)

// rawClient speaks centrifuge's protobuf protocol (v2) over one websocket
// with nothing else: varint-length-prefixed Commands out, one per frame,
// and Replies in (several per frame); pings (empty replies) answered with
// an empty command. It is lighter than centrifuge-go (no event loop, no
// reconnect logic), so on a small machine the load takes less of the CPU
// the server needs.
type rawClient struct {
	ws    *websocket.Conn
	wmu   sync.Mutex
	onPub func(data []byte, at time.Time)

	mu      sync.Mutex
	nextID  uint32
	waiting map[uint32]chan *protocol.Reply
	done    chan struct{}
	err     error
}

var rawEncoder = protocol.NewProtobufCommandEncoder()

func dialRaw(ctx context.Context, url string, onPub func([]byte, time.Time)) (*rawClient, error) {
	d := websocket.Dialer{Subprotocols: []string{"centrifuge-protobuf"}, HandshakeTimeout: 30 * time.Second}
	ws, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	c := &rawClient{ws: ws, onPub: onPub, waiting: map[uint32]chan *protocol.Reply{}, done: make(chan struct{})}
	go c.readLoop()
	if _, err := c.request(ctx, &protocol.Command{Connect: &protocol.ConnectRequest{Name: "leanload-raw"}}); err != nil {
		c.close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

func (c *rawClient) readLoop() {
	defer close(c.done)
	dec := protocol.NewProtobufReplyDecoder(nil)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.mu.Lock()
			c.err = err
			for id, ch := range c.waiting {
				close(ch)
				delete(c.waiting, id)
			}
			c.mu.Unlock()
			return
		}
		at := time.Now()
		_ = dec.Reset(data)
		for {
			r, err := dec.Decode()
			if err != nil {
				break
			}
			switch {
			case r.Id != 0:
				c.mu.Lock()
				ch := c.waiting[r.Id]
				delete(c.waiting, r.Id)
				c.mu.Unlock()
				if ch != nil {
					ch <- r
				}
			case r.Push != nil:
				if r.Push.Pub != nil && c.onPub != nil {
					c.onPub(r.Push.Pub.Data, at)
				}
			default: // a ping: answer with an empty command
				_ = c.write(&protocol.Command{})
			}
		}
	}
}

func (c *rawClient) write(cmd *protocol.Command) error {
	b, err := rawEncoder.Encode(cmd)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.BinaryMessage, b)
}

var errRawClosed = errors.New("socket closed")

func (c *rawClient) request(ctx context.Context, cmd *protocol.Command) (*protocol.Reply, error) {
	ch := make(chan *protocol.Reply, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, errRawClosed
	}
	c.nextID++
	cmd.Id = c.nextID
	c.waiting[cmd.Id] = ch
	c.mu.Unlock()
	if err := c.write(cmd); err != nil {
		return nil, err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, errRawClosed
		}
		if r.Error != nil {
			return r, fmt.Errorf("centrifuge error %d: %s", r.Error.Code, r.Error.Message)
		}
		return r, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waiting, cmd.Id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (c *rawClient) subscribe(ctx context.Context, channel string) error {
	_, err := c.request(ctx, &protocol.Command{Subscribe: &protocol.SubscribeRequest{Channel: channel}})
	return err
}

func (c *rawClient) publish(ctx context.Context, channel string, data []byte) error {
	_, err := c.request(ctx, &protocol.Command{Publish: &protocol.PublishRequest{Channel: channel, Data: data}})
	return err
}

func (c *rawClient) close() { c.ws.Close() }

package loadtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// The flood scenario is one abusive client: one socket, one client id,
// sending every command family that writes or scans as fast as the server
// answers (FloodWorkers requests in flight per family) for FloodFor. It
// reports, per family, how many requests were served and how many were
// refused, by code. Run it beside a fanout or pairs run against the same
// server to see what the flood costs honest clients (bench/abuse.sh).

// FloodFamilies are the command families the flood sends.
var FloodFamilies = []string{"create", "update", "query", "history", "edit", "send"}

// FloodResult holds the figures of the flood scenario.
type FloodResult struct {
	Seconds  float64                `json:"seconds"`
	Families map[string]*FloodCount `json:"families"`
	// Closed is set when the server closed the flooder's socket.
	Closed string `json:"closed,omitempty"`
}

// FloodCount is one family's outcome.
type FloodCount struct {
	Sent     int64          `json:"sent"`
	Served   int64          `json:"served"`
	Refused  map[string]int `json:"refused"`
	ServedPS float64        `json:"served_per_sec"`
	mu       sync.Mutex
	served   atomic.Int64
	sent     atomic.Int64
}

func (f *FloodCount) refuse(key string) {
	f.mu.Lock()
	if f.Refused == nil {
		f.Refused = map[string]int{}
	}
	f.Refused[key]++
	f.mu.Unlock()
}

// Summary is the human report.
func (r *FloodResult) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "flood: one socket for %.1fs", r.Seconds)
	for _, name := range FloodFamilies {
		f := r.Families[name]
		if f == nil {
			continue
		}
		keys := make([]string, 0, len(f.Refused))
		for k := range f.Refused {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var refused []string
		for _, k := range keys {
			refused = append(refused, fmt.Sprintf("%s x%d", k, f.Refused[k]))
		}
		fmt.Fprintf(&b, "\n  %-8s sent %d, served %d (%.0f/s), refused: %s", name, f.Sent, f.Served, f.ServedPS, strings.Join(refused, ", "))
	}
	if r.Closed != "" {
		fmt.Fprintf(&b, "\n  the server closed the socket: %s", r.Closed)
	}
	return b.String()
}

func runFlood(ctx context.Context, e *env) error {
	cfg := e.cfg
	out := &FloodResult{Families: map[string]*FloodCount{}}
	e.res.Flood = out
	me := NewClient(cfg.Prefix+"-flooder", -1, e.clientOptions())
	peer := NewClient(cfg.Prefix+"-peer", 0, e.clientOptions())
	if err := e.loginAll(ctx, "login", []*Client{me, peer}); err != nil {
		return err
	}
	defer closeAll([]*Client{me, peer})
	var cid string
	var target SendResult
	err := e.phase(ctx, "setup", nil, func(ctx context.Context) error {
		var err error
		if cid, err = me.StartConversation(ctx, "flood", []string{peer.ID}); err != nil {
			return err
		}
		target, err = me.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(`{"_lctype":-1,"_lctext":"edit me"}`)}, true)
		return err
	})
	if err != nil {
		return err
	}
	var n atomic.Int64
	request := func(family string) *wire.GenericCommand {
		i := n.Add(1)
		switch family {
		case "create":
			return &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_start.Enum(), ConvMessage: &wire.ConvCommand{
				M: []string{me.ID, peer.ID}, Unique: proto.Bool(false),
				Attr: &wire.JsonObjectMessage{Data: proto.String(`{"name":"flood ` + strconv.FormatInt(i, 10) + `"}`)}}}
		case "update":
			return &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_update.Enum(), ConvMessage: &wire.ConvCommand{
				Cid: proto.String(cid), Attr: &wire.JsonObjectMessage{Data: proto.String(`{"name":"renamed ` + strconv.FormatInt(i, 10) + `"}`)}}}
		case "query":
			return &wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_query.Enum(), ConvMessage: &wire.ConvCommand{
				Where: &wire.JsonObjectMessage{Data: proto.String(`{"m":{"$all":["` + me.ID + `"]},"name":{"$regex":"flood 1"}}`)},
				Limit: proto.Int32(100)}}
		case "history":
			return &wire.GenericCommand{Cmd: wire.CommandType_logs.Enum(), LogsMessage: &wire.LogsCommand{Cid: proto.String(cid), L: proto.Int32(100)}}
		case "edit":
			return &wire.GenericCommand{Cmd: wire.CommandType_patch.Enum(), Op: wire.OpType_modify.Enum(), PatchMessage: &wire.PatchCommand{
				Patches: []*wire.PatchItem{{Cid: proto.String(cid), Mid: proto.String(target.ID), Timestamp: proto.Int64(target.Timestamp),
					Data: proto.String(`{"_lctype":-1,"_lctext":"edit ` + strconv.FormatInt(i, 10) + `"}`)}}}}
		default: // send
			return &wire.GenericCommand{Cmd: wire.CommandType_direct.Enum(), DirectMessage: &wire.DirectCommand{
				Cid: proto.String(cid), Dt: proto.String(newUUID()), Msg: proto.String(`{"_lctype":-1,"_lctext":"flood"}`)}}
		}
	}
	for _, f := range FloodFamilies {
		out.Families[f] = &FloodCount{}
	}
	start := time.Now()
	err = e.phase(ctx, "flood", nil, func(ctx context.Context) error {
		// The flood's end is a flag, not a context: a websocket write cut
		// by its context closes the socket.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var over atomic.Bool
		stop := time.AfterFunc(cfg.FloodFor, func() { over.Store(true) })
		defer stop.Stop()
		var wg sync.WaitGroup
		var closed sync.Once
		for _, family := range FloodFamilies {
			count := out.Families[family]
			for range cfg.FloodWorkers {
				wg.Go(func() {
					for !over.Load() && ctx.Err() == nil {
						count.sent.Add(1)
						res, err := me.Request(ctx, request(family))
						if a := res.GetAckMessage(); err == nil && a != nil && a.Code != nil {
							err = &realtime.Error{Code: int(a.GetCode())}
						}
						switch {
						case err == nil:
							count.served.Add(1)
						case ctx.Err() != nil:
							count.sent.Add(-1) // cut by the end of the flood
						case errors.Is(err, ErrClosed):
							closed.Do(func() {
								out.Closed = "closed"
								if c := me.Conn(); c != nil && c.Err() != nil {
									out.Closed = c.Err().Error()
								}
							})
							cancel()
						default:
							count.refuse(errorKey(err))
						}
					}
				})
			}
		}
		wg.Wait()
		return nil
	})
	out.Seconds = time.Since(start).Seconds()
	for _, f := range out.Families {
		f.Sent, f.Served = f.sent.Load(), f.served.Load()
		f.ServedPS = float64(f.Served) / max(out.Seconds, 1e-9)
	}
	return err
}

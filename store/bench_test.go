package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/leanhub/realtime"
	"github.com/leanhub/realtime/store"
)

// benchBody is a ~150-byte typed-message body.
var benchBody = `{"_lctype":-1,"_lctext":"` + strings.Repeat("lorem ipsum ", 10) + `","_lcattrs":{"k":1}}`

const (
	benchConvs   = 100
	benchSenders = 64
)

type benchEnv struct {
	s       *store.SQL
	convs   []string
	senders []string
}

// newBenchEnv makes 100 conversations whose members are the 64 senders.
func newBenchEnv(b *testing.B, open func(testing.TB, *store.Options) *store.SQL) *benchEnv {
	s := open(b, nil)
	env := &benchEnv{s: s}
	for i := range benchSenders {
		env.senders = append(env.senders, fmt.Sprintf("sender%02d", i))
	}
	for range benchConvs {
		c, _, err := s.CreateConversation(context.Background(), &realtime.Conversation{Members: env.senders})
		if err != nil {
			b.Fatal(err)
		}
		env.convs = append(env.convs, c.ID)
	}
	return env
}

func reportRate(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

// reportBatch reports the mean group-commit batch size since before.
func reportBatch(b *testing.B, s *store.SQL, before store.Stats) {
	after := s.Stats()
	if n := after.Batches - before.Batches; n > 0 {
		b.ReportMetric(float64(after.Messages-before.Messages)/float64(n), "msgs/batch")
	}
}

// BenchmarkAppend measures AppendMessages with one sequential sender and with
// 64 concurrent senders across 100 conversations, and as a ceiling, raw
// batched multi-row INSERTs of the same rows with bun (64 rows a
// transaction, nothing else: no seq, dedup, membership or cursor work).
func BenchmarkAppend(b *testing.B) {
	for _, db := range []struct {
		name string
		open func(testing.TB, *store.Options) *store.SQL
	}{{"sqlite", openSQLite}, {"postgres", openPG}} {
		b.Run(db.name, func(b *testing.B) {
			env := newBenchEnv(b, db.open)
			var dt atomic.Int64
			b.Run("sequential", func(b *testing.B) {
				ctx := context.Background()
				before := env.s.Stats()
				for i := 0; b.Loop(); i++ {
					res, err := env.s.AppendMessages(ctx, []*realtime.Message{{
						ConvID: env.convs[i%benchConvs], From: env.senders[0], Data: benchBody,
						ClientMsgID: fmt.Sprint("dt", dt.Add(1)),
					}})
					if err != nil || res[0].Err != nil {
						b.Fatal(err, res)
					}
				}
				reportRate(b, b.N)
				reportBatch(b, env.s, before)
			})
			b.Run("concurrent64", func(b *testing.B) {
				ctx := context.Background()
				var next atomic.Int64
				var wg sync.WaitGroup
				before := env.s.Stats()
				b.ResetTimer()
				for g := range benchSenders {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for k := 0; ; k++ {
							if next.Add(1) > int64(b.N) {
								return
							}
							res, err := env.s.AppendMessages(ctx, []*realtime.Message{{
								ConvID: env.convs[(g*7+k)%benchConvs], From: env.senders[g], Data: benchBody,
								ClientMsgID: fmt.Sprint("dt", dt.Add(1)),
							}})
							if err != nil || res[0].Err != nil {
								b.Error(err, res)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				reportRate(b, b.N)
				reportBatch(b, env.s, before)
			})
			b.Run("ceiling-bun-multirow", func(b *testing.B) {
				ctx := context.Background()
				db := env.s.DB()
				const batch = benchSenders
				rows := make([]rawMsg, 0, batch)
				for done := 0; done < b.N; {
					rows = rows[:0]
					for j := 0; j < batch && done < b.N; j++ {
						seq := ceilingSeq.Add(1)
						done++
						rows = append(rows, rawMsg{
							ID: fmt.Sprintf("ceil%020d", seq), ConvID: "ceiling" + env.convs[j%benchConvs][7:],
							Seq: seq, TS: seq, From: env.senders[j%benchSenders],
							ClientMsgID: fmt.Sprint("dt", dt.Add(1)), Data: benchBody, LCType: -1,
						})
					}
					if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
						_, err := tx.NewInsert().Model(&rows).Exec(ctx)
						return err
					}); err != nil {
						b.Fatal(err)
					}
				}
				reportRate(b, b.N)
			})
		})
	}
}

var ceilingSeq atomic.Int64

// rawMsg is the messages row as the ceiling benchmark inserts it.
type rawMsg struct {
	bun.BaseModel `bun:"table:messages"`
	ID            string `bun:"id,pk"`
	ConvID        string `bun:"conv_id"`
	Seq           int64  `bun:"seq"`
	TS            int64  `bun:"ts"`
	From          string `bun:"from_id"`
	ClientMsgID   string `bun:"client_msg_id"`
	Data          string `bun:"data"`
	LCType        int    `bun:"lctype"`
}

// BenchmarkUnread: a client in 1,000 conversations (5 messages each), 100
// of them with unread messages; one op is one Unread computation.
func BenchmarkUnread(b *testing.B) {
	for _, db := range []struct {
		name string
		open func(testing.TB, *store.Options) *store.SQL
	}{{"sqlite", openSQLite}, {"postgres", openPG}} {
		b.Run(db.name, func(b *testing.B) {
			s := db.open(b, nil)
			ctx := context.Background()
			start := time.Now()
			var msgs []*realtime.Message
			var convs []string
			for i := range 1000 {
				other := fmt.Sprintf("o%04d", i)
				c, _, err := s.CreateConversation(ctx, &realtime.Conversation{Members: []string{"me", other, "x"}})
				if err != nil {
					b.Fatal(err)
				}
				convs = append(convs, c.ID)
				for k := range 5 {
					msgs = append(msgs, &realtime.Message{ConvID: c.ID, From: other, Data: fmt.Sprintf("m%d", k)})
				}
			}
			for i := 0; i < len(msgs); i += 250 {
				if _, err := s.AppendMessages(ctx, msgs[i:min(i+250, len(msgs))]); err != nil {
					b.Fatal(err)
				}
			}
			var reads []realtime.Cursor
			for i, c := range convs {
				if i%10 != 0 {
					conv, err := s.GetConversation(ctx, c)
					if err != nil {
						b.Fatal(err)
					}
					reads = append(reads, realtime.Cursor{ConvID: c, ClientID: "me", ReadSeq: conv.Seq,
						ReadAt: conv.LastMessage.Timestamp, ReadMessageID: conv.LastMessage.ID})
				}
			}
			if err := s.UpdateCursors(ctx, reads); err != nil {
				b.Fatal(err)
			}
			b.Logf("setup %v", time.Since(start))
			b.ResetTimer()
			for b.Loop() {
				u, err := s.Unread(ctx, "me", 0, 0)
				if err != nil || len(u) != 100 {
					b.Fatal(len(u), err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "unread/s")
		})
	}
}

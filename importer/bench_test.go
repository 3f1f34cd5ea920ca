package importer_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/leanhub/realtime"
	"github.com/leanhub/realtime/importer"
	"github.com/leanhub/realtime/store"
)

// ceilingRow is a messages row as the ceiling inserts it (as the store's
// BenchmarkAppend ceiling does: bun, multi-row, nothing else).
type ceilingRow struct {
	bun.BaseModel `bun:"table:messages"`
	ID            string `bun:"id,pk"`
	ConvID        string `bun:"conv_id"`
	Seq           int64  `bun:"seq"`
	TS            int64  `bun:"ts"`
	From          string `bun:"from_id"`
	Data          string `bun:"data"`
	Binary        []byte `bun:"bin,nullzero"`
	MentionAll    bool   `bun:"mention_all"`
	PatchTS       int64  `bun:"patch_ts"`
	Recalled      bool   `bun:"recalled"`
}

// BenchmarkImportThroughput imports a generated app (50,000 messages in
// 500 conversations; REALTIME_IMPORT_FULL: 200,000 in 2,000) into empty
// stores three ways and reports each in messages/s and as a fraction of
// the ceiling measured in the same run:
//
//   - ceiling: the same message rows inserted with bun multi-row INSERTs,
//     rows per transaction as the import's batches (500) and as the
//     store's BenchmarkAppend ceiling (64), nothing else: no heads, no
//     checks, no cursors;
//   - write: Target.ImportMessages of the planned messages in batches of
//     500 (the store's import path: heads, checks, mentions);
//   - run: importer.Run from the history files, everything included
//     (reading and parsing JSON, planning, cursors, checkpoint).
//
// Run it once: go test -run '^$' -bench ImportThroughput -benchtime 1x ./importer/
func BenchmarkImportThroughput(b *testing.B) {
	nc, nm := 500, 50_000
	if _, full := appSize(); full == 200_000 {
		nc, nm = 2000, 200_000
	}
	app := generateApp(nc, nm, 9)
	f := writeApp(b, app, 0)
	var planned []realtime.Message
	for _, id := range slices.Sorted(maps.Keys(app.want)) {
		planned = append(planned, app.want[id]...)
	}
	var convs []realtime.Conversation
	for _, c := range app.convs {
		convs = append(convs, realtime.Conversation{ID: c.id, Members: c.members, Transient: c.transient})
	}
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			var ceil500, ceil64, write, run time.Duration
			for b.Loop() {
				ceil500 += timeIt(b, func() { ceiling(b, be.open(b), planned, 500) })
				ceil64 += timeIt(b, func() { ceiling(b, be.open(b), planned, 64) })

				st := be.open(b)
				if _, _, err := st.ImportConversations(ctx, convs); err != nil {
					b.Fatal(err)
				}
				write += timeIt(b, func() {
					for i := 0; i < len(planned); i += 500 {
						res, err := st.ImportMessages(ctx, planned[i:min(i+500, len(planned))])
						if err != nil {
							b.Fatal(err)
						}
						for _, r := range res {
							if r.Err != nil {
								b.Fatal(r.Err)
							}
						}
					}
				})

				st = be.open(b)
				run += timeIt(b, func() {
					im, err := importer.New(st, f.config())
					if err != nil {
						b.Fatal(err)
					}
					sum, err := im.Run(ctx)
					if err != nil || sum.Messages.Imported != len(planned) {
						b.Fatal(err, sum.Messages)
					}
				})
			}
			rate := func(d time.Duration) float64 { return float64(b.N*len(planned)) / d.Seconds() }
			b.ReportMetric(rate(ceil500), "ceiling500-msgs/s")
			b.ReportMetric(rate(ceil64), "ceiling64-msgs/s")
			b.ReportMetric(rate(write), "write-msgs/s")
			b.ReportMetric(rate(run), "run-msgs/s")
			b.ReportMetric(rate(write)/rate(ceil500), "write/ceiling500")
			b.ReportMetric(rate(run)/rate(ceil500), "run/ceiling500")
			b.ReportMetric(rate(run)/rate(ceil64), "run/ceiling64")
			b.Logf("%s, %d messages: ceiling %.0f msgs/s (500 rows/tx), %.0f (64 rows/tx); ImportMessages %.0f (%.2f of the ceiling); "+
				"Run from files %.0f (%.2f)", be.name, len(planned), rate(ceil500), rate(ceil64), rate(write),
				rate(write)/rate(ceil500), rate(run), rate(run)/rate(ceil500))
		})
	}
}

func timeIt(b *testing.B, f func()) time.Duration {
	b.Helper()
	start := time.Now()
	f()
	return time.Since(start)
}

// ceiling inserts msgs as bare rows, perTx rows a transaction.
func ceiling(b *testing.B, st *store.SQL, msgs []realtime.Message, perTx int) {
	ctx := context.Background()
	rows := make([]ceilingRow, 0, perTx)
	for i := 0; i < len(msgs); i += perTx {
		rows = rows[:0]
		for _, m := range msgs[i:min(i+perTx, len(msgs))] {
			rows = append(rows, ceilingRow{ID: m.ID, ConvID: m.ConvID, Seq: m.Seq, TS: m.Timestamp, From: m.From,
				Data: cmp.Or(m.Data, ""), Binary: m.Binary, MentionAll: m.MentionAll, PatchTS: m.PatchTimestamp, Recalled: m.Recalled})
		}
		if err := st.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.NewInsert().Model(&rows).Exec(ctx)
			return err
		}); err != nil {
			b.Fatal(fmt.Errorf("ceiling insert: %w", err))
		}
	}
}

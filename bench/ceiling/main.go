// Command ceiling measures the store's raw multi-row insert ceiling: the
// rows of the messages table written with bun multi-row INSERTs, 64 rows
// per transaction, one writer, nothing else (no sequence numbers, no
// de-duplication, no membership or cursor work) — what the group-commit
// writer could reach at best on this database. It is the same loop as
// store's BenchmarkAppend/ceiling-bun-multirow, as a program so the bench
// harness can run it beside the load runs on the same database.
//
//	go run ./bench/ceiling -db /tmp/ceiling.db -rows 200000
//	go run ./bench/ceiling -db 'postgres://...&search_path=ceiling1' -json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/leanhub/realtime/store"
)

// rawMsg is the messages row as the ceiling inserts it.
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

// body is a ~150-byte TextMessage body, like the load runs send.
var body = `{"_lctype":-1,"_lctext":"` + strings.Repeat("lorem ipsum ", 10) + `","_lcattrs":{"k":1}}`

func main() {
	dsn := flag.String("db", "ceiling.db", "SQLite file path or postgres:// URL (the schema is migrated first)")
	rows := flag.Int("rows", 200000, "rows to insert")
	batch := flag.Int("batch", 64, "rows per transaction (one multi-row INSERT)")
	convs := flag.Int("convs", 100, "conversations the rows are spread over")
	asJSON := flag.Bool("json", false, "print one JSON object")
	flag.Parse()
	if err := run(*dsn, *rows, *batch, *convs, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
}

func run(dsn string, n, batch, convs int, asJSON bool) error {
	ctx := context.Background()
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	db := st.DB()
	run := time.Now().UnixNano()
	buf := make([]rawMsg, 0, batch)
	start := time.Now()
	for done := 0; done < n; {
		buf = buf[:0]
		for j := 0; j < batch && done < n; j++ {
			seq := int64(done)
			buf = append(buf, rawMsg{
				ID: fmt.Sprintf("ceil%x%016d", run, seq), ConvID: fmt.Sprintf("ceiling%x-%03d", run, done%convs),
				Seq: seq, TS: seq, From: fmt.Sprintf("sender%02d", done%64),
				ClientMsgID: fmt.Sprintf("dt%x-%d", run, seq), Data: body, LCType: -1,
			})
			done++
		}
		if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.NewInsert().Model(&buf).Exec(ctx)
			return err
		}); err != nil {
			return err
		}
	}
	el := time.Since(start)
	res := map[string]any{"rows": n, "batch": batch, "seconds": el.Seconds(), "rows_per_sec": float64(n) / el.Seconds()}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("ceiling: %d rows in %d-row transactions in %.2fs: %.0f rows/s\n", n, batch, el.Seconds(), float64(n)/el.Seconds())
	return nil
}

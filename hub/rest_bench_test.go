package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/lcclient"
)

// BenchmarkRESTSendDeliver measures a REST send (POST
// .../conversations/{id}/messages with the master key) until a websocket
// member has it: REALTIME_BENCH_REST_CONC concurrent callers (default 8),
// one receiver. The "sdk" run is the baseline in the same process: the
// same number of websocket senders, each waiting for its ack.
//
//	go test -run XXX -bench RESTSendDeliver -benchtime 5000x ./hub/
func BenchmarkRESTSendDeliver(b *testing.B) {
	conc := benchEnvInt(b, "REALTIME_BENCH_REST_CONC", 8)
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			cfg := benchConfig()
			cfg.AppID, cfg.MasterKey = restAppID, restMasterKey
			cfg.Limits.RESTMessageRate = hub.Rate{PerSecond: 1e9, Burst: 1 << 30}
			st := be.open(b)
			srv := newServer(b, st, cfg)
			prefix := benchPrefix()
			rx, senders := prefix+"rx", make([]string, conc)
			for i := range senders {
				senders[i] = fmt.Sprintf("%stx%d", prefix, i)
			}
			conv, _, err := srv.Hub.CreateConversation(context.Background(), &realtime.Conversation{Members: append([]string{rx}, senders...)})
			if err != nil {
				b.Fatal(err)
			}
			receiver := srv.Login(b, rx)
			tr := &http.Transport{MaxIdleConnsPerHost: conc}
			b.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			url := srv.URL() + "/1.2/rtm/conversations/" + conv.ID + "/messages"
			restSend := func(i int) error {
				body, _ := json.Marshal(map[string]any{"from_client": senders[i%conc], "message": strconv.FormatInt(time.Now().UnixNano(), 10)})
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				req.Header.Set("X-LC-Id", restAppID)
				req.Header.Set("X-LC-Key", restMasterKey+",master")
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					return err
				}
				defer res.Body.Close()
				if res.StatusCode != http.StatusOK {
					return fmt.Errorf("REST send: %s", res.Status)
				}
				return nil
			}
			// Warm up (the conversation cache, the HTTP connections, the
			// store's first pages) so the timed runs measure the steady
			// state.
			for i := range 200 {
				if err := restSend(i); err != nil {
					b.Fatal("warm-up:", err)
				}
				if _, err := receiver.NextMessage(context.Background()); err != nil {
					b.Fatal("warm-up:", err)
				}
			}
			b.Run(fmt.Sprintf("rest/callers=%d", conc), func(b *testing.B) {
				runDelivery(b, receiver, conc, restSend)
			})
			sdkClients := make([]*lcclient.Client, conc)
			for i := range sdkClients {
				sdkClients[i] = srv.Login(b, senders[i])
			}
			b.Run(fmt.Sprintf("sdk/senders=%d", conc), func(b *testing.B) {
				runDelivery(b, receiver, conc, func(i int) error {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					_, err := sdkClients[i%conc].SendText(ctx, conv.ID, strconv.FormatInt(time.Now().UnixNano(), 10))
					return err
				})
			})
		})
	}
}

// runDelivery has conc goroutines call send b.N times in all, and the
// receiver time each message from the send time its body carries (a
// plain number, or a TextMessage's text).
func runDelivery(b *testing.B, receiver *lcclient.Client, conc int, send func(i int) error) {
	var lat []time.Duration
	done := make(chan error, 1)
	b.ResetTimer()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		for len(lat) < b.N {
			m, err := receiver.NextMessage(ctx)
			if err != nil {
				done <- err
				return
			}
			data := m.Data
			var typed struct {
				Text string `json:"_lctext"`
			}
			if json.Unmarshal([]byte(data), &typed) == nil && typed.Text != "" {
				data = typed.Text
			}
			sent, err := strconv.ParseInt(data, 10, 64)
			if err != nil {
				done <- fmt.Errorf("message %q: %v", m.Data, err)
				return
			}
			lat = append(lat, time.Since(time.Unix(0, sent)))
		}
		done <- nil
	}()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := send(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	reportLatency(b, [][]time.Duration{lat})
}

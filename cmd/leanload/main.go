// Command leanload puts load on a LeanCloud-protocol IM deployment (this
// project's hub or any server the official SDKs talk to) with clients that
// behave like the JS SDK 5.x: router lookup, lc.protobuf2.3, session open
// with configBitmap 187, unique conv/start, directs with a dt UUID, and on
// the receiving side throttled delivery acks and reads.
//
//	leanload -server http://127.0.0.1:8080/im -scenario fanout -members 1000 -messages 2000
//	leanload -server http://127.0.0.1:8080/im -scenario pairs -pairs 500 -pair-messages 200
//	leanload -server http://127.0.0.1:8080/im -scenario idle -sockets 10000 -pid $(pgrep -n hubserver)
//	leanload -server http://127.0.0.1:8080/im -scenario storm -clients 2000 -restart-cmd './restart.sh'
//	leanload -server http://127.0.0.1:8080/im -scenario flood -flood-for 20s
//
// It prints a human summary (and with -json one JSON object of every
// figure on stdout) and exits 1 when a check failed: a message acked but
// not received exactly once by every member, a wrong unread notification,
// a phase that did not finish in time.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/leanhub/realtime/internal/loadtest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("leanload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c loadtest.Config
	var asJSON, quiet bool
	fs.StringVar(&c.Scenario, "scenario", "fanout", "fanout, pairs, idle, storm or flood")
	fs.StringVar(&c.Server, "server", "", "the SDK's server option: http(s) URL where GET /v1/route answers (e.g. http://127.0.0.1:8080/im); several nodes of one deployment, comma-separated, spread the clients over them")
	fs.StringVar(&c.WS, "ws", "", "a websocket URL to use directly instead of asking the router (the SDK's RTMServers)")
	fs.StringVar(&c.AppID, "app-id", "leanload", "app id sent at login")
	fs.StringVar(&c.UA, "ua", "", "user agent sent at login (default leanload/1 ...)")
	fs.StringVar(&c.Tag, "tag", "", "device tag sent at login (none by default)")
	fs.StringVar(&c.Prefix, "prefix", "", "client id prefix (default random, so runs do not meet)")
	fs.IntVar(&c.Concurrency, "concurrency", 64, "parallel logins and setup requests")
	fs.DurationVar(&c.PhaseTimeout, "phase-timeout", 0, "bound of every phase; a stuck phase fails the run (default 5m)")
	fs.BoolVar(&c.Reconnect, "reconnect", false, "fanout, pairs: re-login dropped sockets (r: true + session token) and fetch what was missed from history")
	fs.BoolVar(&c.NoRead, "no-read", false, "fanout, pairs: receivers only ack, never mark read (conversation not on screen)")
	fs.IntVar(&c.BodySize, "body", 150, "message body size in bytes (a TextMessage JSON)")
	fs.DurationVar(&c.Grace, "grace", 0, "wait after the last expected delivery, to catch duplicates (default 1s)")

	fs.IntVar(&c.Members, "members", 1000, "fanout: online receivers in the group (the sender is one more member)")
	fs.IntVar(&c.Messages, "messages", 2000, "fanout: messages sent")
	fs.IntVar(&c.Window, "window", 0, "fanout: messages in flight, until acked and delivered to every member (default 256); pairs: sends awaiting their ack per client (default 1)")
	fs.Float64Var(&c.Rate, "rate", 0, "fanout: send rate in msgs/s (0: as fast as the window allows)")

	fs.IntVar(&c.Pairs, "pairs", 500, "pairs: 1:1 conversations")
	fs.IntVar(&c.PairMessages, "pair-messages", 200, "pairs: messages per pair (half from each side)")
	fs.StringVar(&c.PairsMode, "pairs-mode", "concurrent", "pairs: concurrent (both sides send their share at once) or alternate (ping-pong)")

	fs.IntVar(&c.Sockets, "sockets", 10000, "idle: logged-in sockets held")
	fs.IntVar(&c.PID, "pid", 0, "idle: server process id on this machine, to read its RSS from /proc")
	fs.DurationVar(&c.Settle, "settle", 0, "idle: wait after all logged in before reading RSS again (default 10s)")
	fs.DurationVar(&c.Hold, "hold", 0, "idle: keep the sockets this much longer after the settle")

	fs.IntVar(&c.Clients, "clients", 2000, "storm: clients that reconnect at once")
	fs.IntVar(&c.Convs, "convs", 20, "storm: conversations per client")
	fs.IntVar(&c.Unread, "unread", 5, "storm: conversations per client with one unread message (one of them mentions the client)")
	fs.IntVar(&c.GroupSize, "group", 10, "storm: clients per conversation (plus one helper that sends)")
	fs.StringVar(&c.RestartCmd, "restart-cmd", "", "storm: shell command that restarts the server; the tool then waits for the router to answer (default: the tool drops the sockets itself)")
	fs.IntVar(&c.Steady, "steady", 0, "storm: extra clients (in pairs) chatting during the storm")
	fs.Float64Var(&c.SteadyRate, "steady-rate", 2, "storm: msgs/s per steady client")
	fs.DurationVar(&c.SteadyFor, "steady-for", 0, "storm: least time the steady clients chat from the start of the storm (default 5s)")

	fs.DurationVar(&c.FloodFor, "flood-for", 0, "flood: how long one abusive socket sends every command family that writes or scans (default 10s)")
	fs.IntVar(&c.FloodWorkers, "flood-workers", 0, "flood: requests in flight per command family (default 4)")

	fs.BoolVar(&asJSON, "json", false, "print one JSON object of all figures on stdout (the summary goes to stderr)")
	fs.BoolVar(&quiet, "quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "leanload: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if !quiet {
		c.Log = stderr
	}
	// A signal stops the run; the report says which, so a run cut short
	// from outside is not mistaken for the server's doing.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var got atomic.Value
	go func() {
		if s, ok := <-sigs; ok {
			got.Store(s.String())
			fmt.Fprintf(stderr, "leanload: got %s, stopping\n", s)
			cancel()
		}
	}()
	res, err := loadtest.Run(ctx, c)
	if s, ok := got.Load().(string); ok && res != nil {
		res.Failures = append(res.Failures, "interrupted by signal "+s)
		res.OK = false
	}
	if err != nil {
		fmt.Fprintln(stderr, "leanload:", err)
		return 2
	}
	summary := res.Summary()
	if asJSON {
		fmt.Fprintln(stderr, summary)
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(stderr, "leanload:", err)
			return 2
		}
	} else {
		fmt.Fprintln(stdout, summary)
	}
	if !res.OK {
		fmt.Fprintln(stderr, "leanload: FAILED: "+strings.Join(res.Failures, "; "))
		return 1
	}
	return 0
}

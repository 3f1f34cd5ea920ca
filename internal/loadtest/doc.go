// Package loadtest drives a LeanCloud-protocol deployment over the network
// with SDK-like clients and measures it: group fan-out, 1:1 pairs, idle
// sockets and reconnect storms. cmd/leanload is its command line. It talks
// to the server only through the router and websockets, so it measures any
// deployment the official SDKs talk to, not only this project's hub.
//
// # The clients
//
// Each client behaves like leancloud-realtime 5.x on the wire:
//
//   - GET {server}/v1/route?appId=..&secure=true&_t=.. (the answer is cached
//     for its ttl and asked again after a goaway), or a fixed websocket URL;
//   - websocket subprotocol lc.protobuf2.3, one command per binary frame;
//   - session/open with ua, r, deviceId (a UUID per client), optional tag
//     and configBitmap 187; after it, commands omit peerId (bit 128);
//   - conv/start with unique: true and the sorted members including the
//     creator (conv/add for groups beyond 500 members);
//   - direct with a fresh UUID v4 dt, waiting for the ack (20 s, the SDK's
//     command timeout);
//   - for every received non-transient message from someone else, a
//     delivery ack {cid, fromts, tots}: the first of a quiet conversation at
//     once, then at most once a second per conversation covering all
//     gathered (or at once when 100 are pending) — see Throttle;
//   - while a conversation is "on screen" (fanout and pairs, unless NoRead),
//     a read {cid, timestamp, mid} of its newest message, at most once a
//     second per conversation, leading edge first;
//   - lastUnreadNotifTime kept from every unread push's notifTime, and sent
//     with r: true and the session token on re-login; with Reconnect a
//     dropped socket is re-logged in that way (backoff 0.1-2 s) and what was
//     missed is fetched from history (logs, direction NEW).
//
// # Scenarios
//
// fanout: one sender and Members receivers in one group created through
// the protocol; Messages messages of BodySize bytes (a TextMessage whose
// text carries the run id, a sequence number and the send time); at most
// Window in flight, a message being in flight until it is acked and every
// receiver has it; or Rate messages a second (still bounded by the window).
//
// pairs: Pairs 1:1 conversations; PairMessages per pair, half sent by each
// side. "concurrent": both sides send their share at once, each client
// keeping at most Window sends waiting for their ack (default 1, an app
// awaiting conversation.send). "alternate": a ping-pong, each side sending
// its next message when it receives the other's.
//
// idle: Sockets logged-in sockets held for Settle (+ Hold); with PID the
// server's VmRSS is read from /proc before, after the logins and after the
// settle. The tool raises its own RLIMIT_NOFILE and reports the server's.
//
// storm: Clients clients, each in Convs conversations (groups of GroupSize
// clients plus one helper client; helpers create them), Unread of which get
// one message from their helper, one of those mentioning the client. The
// clients log in first and receive those messages live (acking, not
// reading), as users connected when a server restarts; then the sockets
// are dropped by the tool or RestartCmd restarts the server (the tool
// waits for the router to answer again), and every client re-logs in at
// once with r: true, its session token and its lastUnreadNotifTime. The
// figures are the time to each client's unread notification, and every
// count, last message id and mention flag is checked. A client whose
// login sync ran after its messages were sent already holds them in its
// notifTime and is owed nothing (NotOwed; an echo round trip after login
// makes that rare). Steady extra clients, in pairs, chat meanwhile.
//
// flood: one abusive client on one socket sends conversation creations,
// updates, queries, history pulls, edits and messages for FloodFor, with
// FloodWorkers requests of each family in flight, and counts per family
// what was served and what was refused (by code). It checks nothing: run
// it beside another scenario to see what it costs honest clients.
//
// # Checks
//
// Every phase is bounded by PhaseTimeout; a phase that does not finish
// fails the run with what it had done. fanout and pairs fail unless every
// acked message reached every member exactly once, with the acked id;
// storm fails on any wrong, missing or repeated notification.
package loadtest

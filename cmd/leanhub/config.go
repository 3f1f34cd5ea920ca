package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/leanhub/realtime/hub"
)

// envPrefix starts every environment variable the server reads.
const envPrefix = "LEANHUB_"

// envName is the environment variable (and config file key) of a flag:
// -node-lease is LEANHUB_NODE_LEASE.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// secrets are settings read from the environment or the config file only
// (a command line is visible to every user of the machine); each also has a
// -NAME-file flag.
var secrets = []struct{ name, usage string }{
	{"master-key", "LeanCloud master key: turns on the REST API ({prefix}/1.2/rtm), verifies signatures, signs session tokens"},
	{"session-secret", "key that signs session tokens (default: derived from the master key, or the app id when nothing needs a signature)"},
	{"apns-key", "APNs token-auth signing key (.p8 PEM)"},
	{"fcm-service-account", "FCM v1 service account JSON"},
	{"webhook-secret", "HMAC secret of the push webhook"},
}

// options are the parsed settings.
type options struct {
	configFile string
	addr       string
	adminAddr  string
	prefix     string
	publicURL  string
	tlsCert    string
	tlsKey     string
	trustProxy bool
	logLevel   string
	logFormat  string

	db              string
	dbMaxConns      int
	dbReadConns     int
	groupCommit     time.Duration
	maxBatch        int
	appID, appKey   string
	requireLoginSig bool
	requireConvSig  bool
	requireBlackSig bool
	signatureMaxAge time.Duration
	allowedOrigins  string
	keywords        string
	hookTimeout     time.Duration
	hookFailure     string
	disableEdit     bool
	disableRecall   bool
	memberChange    string
	visibility      string
	sessionTTL      time.Duration
	pingInterval    time.Duration
	pingTimeout     time.Duration
	loginTimeout    time.Duration
	writeTimeout    time.Duration
	limits          hub.Limits

	pushTemplate string
	apnsKeyID    string
	apnsTeamID   string
	apnsBundleID string
	fcmProjectID string
	webhookURL   string

	broker    string
	node      string
	nodeLease time.Duration

	drainDelay      time.Duration
	drainTimeout    time.Duration
	shutdownTimeout time.Duration

	// secret values, by secrets[].name
	secret map[string]string
	// sources says where each setting came from (flag, env, file), for
	// the summary.
	sources map[string]string
	fs      *flag.FlagSet
}

// rateValue is a -*-rate flag: PER_SECOND or PER_SECOND:BURST.
type rateValue struct{ r *hub.Rate }

func (v rateValue) String() string {
	if v.r == nil || v.r.PerSecond == 0 {
		return ""
	}
	return fmt.Sprintf("%g:%d", v.r.PerSecond, v.r.Burst)
}

func (v rateValue) Set(s string) error {
	rate, burst, hasBurst := strings.Cut(s, ":")
	f, err := strconv.ParseFloat(rate, 64)
	if err != nil || f <= 0 {
		return fmt.Errorf("want PER_SECOND[:BURST] with a positive rate, got %q", s)
	}
	v.r.PerSecond = f
	if hasBurst {
		b, err := strconv.Atoi(burst)
		if err != nil || b <= 0 {
			return fmt.Errorf("want PER_SECOND[:BURST] with a positive burst, got %q", s)
		}
		v.r.Burst = b
	}
	return nil
}

// nonNegInt and nonNegDuration refuse negative values (zero means the
// documented default everywhere).
type nonNegInt struct{ p *int }

func (v nonNegInt) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

func (v nonNegInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not an integer: %q", s)
	}
	if n < 0 {
		return fmt.Errorf("must not be negative: %d", n)
	}
	*v.p = n
	return nil
}

type nonNegInt64 struct{ p *int64 }

func (v nonNegInt64) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatInt(*v.p, 10)
}

func (v nonNegInt64) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %q", s)
	}
	if n < 0 {
		return fmt.Errorf("must not be negative: %d", n)
	}
	*v.p = n
	return nil
}

type nonNegDuration struct{ p *time.Duration }

func (v nonNegDuration) String() string {
	if v.p == nil {
		return "0s"
	}
	return v.p.String()
}

func (v nonNegDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration (like 500ms, 15s, 2m): %q", s)
	}
	if d < 0 {
		return fmt.Errorf("must not be negative: %s", s)
	}
	*v.p = d
	return nil
}

func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("leanhub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dur := func(p *time.Duration, name string, def time.Duration, usage string) {
		*p = def
		fs.Var(nonNegDuration{p}, name, usage)
	}
	num := func(p *int, name string, usage string) { fs.Var(nonNegInt{p}, name, usage) }

	fs.StringVar(&o.configFile, "config", "", "file of KEY=value lines (the LEANHUB_* names below, with or without the prefix); flags and the environment win over it")
	fs.StringVar(&o.addr, "addr", ":8080", "address to listen on (port 0 picks a free port)")
	fs.StringVar(&o.adminAddr, "admin-addr", "", "separate address for /healthz, /readyz and /metrics (default: served on -addr)")
	fs.StringVar(&o.prefix, "prefix", "/im", "path the hub is mounted at; clients use https://host<prefix> as their server")
	fs.StringVar(&o.publicURL, "public-url", "", "base URL clients reach the hub at, e.g. https://chat.example.com/im (default: derived from each request)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (PEM); with -tls-key the server speaks HTTPS itself")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	fs.BoolVar(&o.trustProxy, "trust-proxy", false, "trust X-Forwarded-For (client addresses for limits and logs); set it only behind a proxy that sets it")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")

	fs.StringVar(&o.db, "db", "leanhub.db", "SQLite file path, or a postgres:// URL")
	num(&o.dbMaxConns, "db-max-conns", "PostgreSQL connection pool size (default 16; keep the sum over nodes below max_connections)")
	num(&o.dbReadConns, "db-read-conns", "SQLite read connection pool size (default max(4, GOMAXPROCS))")
	dur(&o.groupCommit, "group-commit-window", 0, "longest wait to gather concurrent messages into one transaction (default 1ms)")
	num(&o.maxBatch, "max-batch", "most messages in one group-commit transaction (default 256)")

	fs.StringVar(&o.appID, "app-id", "", "LeanCloud app id the hub serves; it refuses others (default: any app id)")
	fs.StringVar(&o.appKey, "app-key", "", "LeanCloud app key checked on REST calls (X-LC-Key)")
	fs.BoolVar(&o.requireLoginSig, "require-login-signature", false, "refuse logins without a valid signature (needs the master key)")
	fs.BoolVar(&o.requireConvSig, "require-conversation-signature", false, "refuse conversation start/add/remove without a valid signature (needs the master key)")
	fs.BoolVar(&o.requireBlackSig, "require-blacklist-signature", false, "refuse blacklist changes without a valid signature (needs the master key)")
	dur(&o.signatureMaxAge, "signature-max-age", 0, "how old a signature's timestamp may be (default 1h)")
	fs.StringVar(&o.allowedOrigins, "allowed-origins", "", `comma-separated origin host patterns that may connect from a browser ("*.example.com,localhost:*"); "none": same-origin pages only; default: any origin`)
	fs.StringVar(&o.keywords, "keywords", "", "file of words to filter out of messages, one per line (default: no filter)")
	dur(&o.hookTimeout, "hook-timeout", 0, "bound on each hook call (default 5s)")
	fs.StringVar(&o.hookFailure, "hook-failure", "ignore", "what a failed hook does: ignore or refuse")
	fs.BoolVar(&o.disableEdit, "disable-edit", false, "clients may not edit messages")
	fs.BoolVar(&o.disableRecall, "disable-recall", false, "clients may not recall messages")
	fs.StringVar(&o.memberChange, "member-change", "members", "who may add or remove others: members, creator or nobody")
	fs.StringVar(&o.visibility, "conversation-visibility", "all", "which conversations queries find: all (LeanCloud's) or members")
	dur(&o.sessionTTL, "session-token-ttl", 0, "lifetime of session tokens (default 24h)")
	dur(&o.pingInterval, "ping-interval", 0, "how often idle sockets are pinged (default 30s; proxies' read timeouts must be longer)")
	dur(&o.pingTimeout, "ping-timeout", 0, "how long a ping may go unanswered (default 20s)")
	dur(&o.loginTimeout, "login-timeout", 0, "close sockets that log in nobody within it (default 60s)")
	dur(&o.writeTimeout, "write-timeout", 0, "bound on one write to a socket (default 10s)")

	l := &o.limits
	fs.Var(nonNegInt64{&l.MaxFrameSize}, "max-frame-size", "largest websocket frame in bytes (default 65536)")
	num(&l.MaxMessageSize, "max-message-size", "largest message body in bytes (default 5120)")
	num(&l.MaxMembers, "max-members", "most members of a conversation (default 500)")
	num(&l.MaxSubscribers, "max-subscribers", "most subscribers of a service conversation (default 100000)")
	num(&l.MaxQueryLimit, "max-query-limit", "largest query page (default 100)")
	num(&l.MaxMentions, "max-mentions", "most client ids mentioned in a message (default 100)")
	fs.Float64Var(&l.SendRate, "send-rate", 0, "messages per second per client id (default 50)")
	num(&l.SendBurst, "send-burst", "message burst per client id (default 100)")
	fs.Var(rateValue{&l.ConversationRate}, "conversation-rate", "conversation changes per client id, PER_SECOND[:BURST] (default 20:100)")
	fs.Var(rateValue{&l.PatchRate}, "patch-rate", "edits and recalls per client id (default 20:50)")
	fs.Var(rateValue{&l.QueryRate}, "query-rate", "queries per client id (default 50:200)")
	fs.Var(rateValue{&l.ReadRate}, "read-rate", "acks and reads per client id (default 100:500)")
	fs.Var(rateValue{&l.LoginRate}, "login-rate", "logins per source address (default 50:500)")
	num(&l.MaxSocketsPerAddress, "max-sockets-per-address", "sockets open from one address (default 5000)")
	num(&l.MaxSessionsPerClient, "max-sessions-per-client", "live sessions of one client id (default 64)")
	num(&l.MaxSessionsPerSocket, "max-sessions-per-socket", "client ids one socket may multiplex (default 16)")
	num(&l.MaxConcurrentSyncs, "max-concurrent-syncs", "login syncs reading the store at once (default 8; below -db-max-conns)")
	num(&l.OutboundQueue, "outbound-queue", "frames queued for a slow socket before it is closed (default 1024)")
	num(&l.OutboundBytes, "outbound-bytes", "bytes queued for a slow socket before it is closed (default 4 MiB)")
	fs.Var(nonNegInt64{&l.ConversationCacheBytes}, "conversation-cache-bytes", "memory for cached conversations (default 256 MiB)")
	num(&l.MaxPushDataSize, "max-push-data-size", "largest pushData in bytes (default 4096)")

	fs.StringVar(&o.pushTemplate, "push-template", "", `static push content, a JSON object with ${convId}, ${timestamp}, ${fromClientId}, e.g. {"alert":"New message"}`)
	fs.StringVar(&o.apnsKeyID, "apns-key-id", "", "APNs signing key id (with the key from LEANHUB_APNS_KEY or -apns-key-file)")
	fs.StringVar(&o.apnsTeamID, "apns-team-id", "", "Apple team id of the APNs key")
	fs.StringVar(&o.apnsBundleID, "apns-bundle-id", "", "app bundle id (apns-topic)")
	fs.StringVar(&o.fcmProjectID, "fcm-project-id", "", "Firebase project id (default: the service account's)")
	fs.StringVar(&o.webhookURL, "webhook-url", "", "push gateway URL; notifications for platforms without APNs/FCM go there (signed with the webhook secret)")

	fs.StringVar(&o.broker, "broker", "", "join the other nodes on this database: nats://host:4222, or postgres (LISTEN/NOTIFY on -db); default: a single node")
	fs.StringVar(&o.node, "node", "", "this process's name among the nodes (default: random)")
	dur(&o.nodeLease, "node-lease", 0, "how long a node that stops renewing counts as alive (default 15s)")

	dur(&o.drainDelay, "drain-delay", 5*time.Second, "after SIGTERM, how long /readyz answers 503 before sockets are drained (let the load balancer notice)")
	dur(&o.drainTimeout, "drain-timeout", 15*time.Second, "how long draining may take: sockets get goaway and are closed spread over it")
	dur(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "bound on finishing queued work (stores, cursor writes, pushes) after the drain")

	for _, s := range secrets {
		fs.String(s.name+"-file", "", "file holding the "+s.usage+"; or set "+envName(s.name))
	}
	return fs
}

// parseOptions reads flags, then the environment, then the config file,
// each filling only what the ones before left unset.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{secret: map[string]string{}, sources: map[string]string{}}
	fs := newFlagSet(o, stderr)
	o.fs = fs
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: leanhub [flags]\n\nA LeanMessage (LeanCloud IM) server. Every flag can also be set as an environment\nvariable LEANHUB_<FLAG> (-node-lease: LEANHUB_NODE_LEASE) or in the -config file;\nflags win over the environment, which wins over the file.\nSecrets come from the environment, the config file or a *-file flag only:\n")
		for _, s := range secrets {
			fmt.Fprintf(fs.Output(), "  %-28s %s\n", envName(s.name), s.usage)
		}
		fmt.Fprintf(fs.Output(), "\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) { o.sources[f.Name] = "flag" })

	known := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { known[envName(f.Name)] = true })
	for _, s := range secrets {
		known[envName(s.name)] = true
	}
	apply := func(source string, lookup func(key string) (string, bool)) error {
		var errs []error
		fs.VisitAll(func(f *flag.Flag) {
			if o.sources[f.Name] != "" {
				return
			}
			v, ok := lookup(envName(f.Name))
			if !ok {
				return
			}
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", source, envName(f.Name), err))
				return
			}
			o.sources[f.Name] = source
		})
		for _, s := range secrets {
			if o.sources[s.name] != "" {
				continue
			}
			if v, ok := lookup(envName(s.name)); ok && v != "" {
				o.secret[s.name] = v
				o.sources[s.name] = source
			}
		}
		return errors.Join(errs...)
	}
	env := func(key string) (string, bool) {
		v := getenv(key)
		return v, v != ""
	}
	if err := apply("environment", env); err != nil {
		return nil, err
	}
	if o.configFile != "" {
		kv, err := readConfigFile(o.configFile, known)
		if err != nil {
			return nil, err
		}
		if err := apply("config file "+o.configFile+":", func(key string) (string, bool) {
			v, ok := kv[key]
			return v, ok
		}); err != nil {
			return nil, err
		}
	}
	// Secrets given as files (flag, env or config file set -NAME-file).
	for _, s := range secrets {
		path := fs.Lookup(s.name + "-file").Value.String()
		if path == "" {
			continue
		}
		if o.secret[s.name] != "" {
			return nil, fmt.Errorf("%s and -%s-file are both set: use one", envName(s.name), s.name)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("-%s-file: %w", s.name, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return nil, fmt.Errorf("-%s-file %s is empty", s.name, path)
		}
		o.secret[s.name] = v
		o.sources[s.name] = "file " + path
	}
	return o, o.check()
}

// readConfigFile reads KEY=value lines; # starts a comment line. Keys are
// the LEANHUB_* names, the prefix optional. Unknown keys are an error (a
// typo would otherwise be silently ignored).
func readConfigFile(path string, known map[string]bool) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20) // a service account JSON fits
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("config %s:%d: want KEY=value", path, n)
		}
		k = strings.ToUpper(strings.TrimSpace(k))
		if !strings.HasPrefix(k, envPrefix) {
			k = envPrefix + k
		}
		if !known[k] {
			return nil, fmt.Errorf("config %s:%d: unknown key %s", path, n, k)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return out, nil
}

// check refuses values the flag types let through.
func (o *options) check() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !strings.HasPrefix(o.prefix, "/") || o.prefix == "/" || strings.HasSuffix(o.prefix, "/") {
		bad("-prefix %q: want a path like /im (not the root: /healthz, /readyz and /metrics live there)", o.prefix)
	}
	switch o.logLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("-log-level %q: want debug, info, warn or error", o.logLevel)
	}
	switch o.logFormat {
	case "text", "json":
	default:
		bad("-log-format %q: want text or json", o.logFormat)
	}
	switch o.hookFailure {
	case "ignore", "refuse":
	default:
		bad("-hook-failure %q: want ignore or refuse", o.hookFailure)
	}
	switch o.memberChange {
	case "members", "creator", "nobody":
	default:
		bad("-member-change %q: want members, creator or nobody", o.memberChange)
	}
	switch o.visibility {
	case "all", "members":
	default:
		bad("-conversation-visibility %q: want all or members", o.visibility)
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		bad("-tls-cert and -tls-key go together")
	}
	if o.limits.SendRate < 0 {
		bad("-send-rate must not be negative")
	}
	if (o.requireLoginSig || o.requireConvSig || o.requireBlackSig) && o.secret["master-key"] == "" {
		bad("signatures are required but %s is not set", envName("master-key"))
	}
	if o.apnsKeyID != "" || o.apnsTeamID != "" || o.secret["apns-key"] != "" {
		if o.apnsKeyID == "" || o.apnsTeamID == "" || o.secret["apns-key"] == "" || o.apnsBundleID == "" {
			bad("APNs needs -apns-key-id, -apns-team-id, -apns-bundle-id and the key (%s or -apns-key-file)", envName("apns-key"))
		}
	}
	if o.secret["webhook-secret"] != "" && o.webhookURL == "" {
		bad("%s is set but -webhook-url is not", envName("webhook-secret"))
	}
	if o.publicURL != "" && !strings.HasPrefix(o.publicURL, "http://") && !strings.HasPrefix(o.publicURL, "https://") {
		bad("-public-url %q: want an http:// or https:// URL", o.publicURL)
	}
	return errors.Join(errs...)
}

// summary is the settings as log attributes, secrets reduced to where
// they came from.
func (o *options) summary() []any {
	var out []any
	o.fs.VisitAll(func(f *flag.Flag) {
		if src := o.sources[f.Name]; src != "" {
			v := f.Value.String()
			if f.Name == "db" {
				v = redactDSN(v)
			}
			out = append(out, f.Name, v)
		}
	})
	names := make([]string, 0, len(secrets))
	for _, s := range secrets {
		names = append(names, s.name)
	}
	sort.Strings(names)
	for _, n := range names {
		if src := o.sources[n]; src != "" {
			out = append(out, n, "[redacted, from "+src+"]")
		}
	}
	return out
}

// redactDSN hides a password in a postgres:// URL.
func redactDSN(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return dsn
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return dsn
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

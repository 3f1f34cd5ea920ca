package hub

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/typedmsg"
)

// Config configures a Hub. A nil *Config, and every zero field, means the
// documented default.
//
// Security: with the zero Config ANY client may log in as ANY client id,
// create conversations and read the history of conversations it is a member
// of, exactly like a LeanCloud app without signatures. Production apps set
// Authenticator (or MasterKey with signatures) and AllowedOrigins.
type Config struct {
	// AppID is the LeanCloud app id this hub serves; sessions opened for
	// another app id are refused with 4100. "" accepts any app id.
	AppID string
	// AppKey is checked on REST calls (X-LC-Key) when set.
	AppKey string
	// MasterKey, when set with one of the Require*Signature switches,
	// verifies LeanCloud-compatible HMAC-SHA1 signatures. It is also the
	// key of the REST API v2 ({mount}/1.2/rtm/...: X-LC-Key
	// "{MasterKey},master" or X-LC-Sign); "" turns that API off (every
	// call answers 401).
	MasterKey string
	// RequireLoginSignature refuses session opens without a valid signature
	// (4102). Needs MasterKey.
	RequireLoginSignature bool
	// RequireConversationSignature refuses conversation start/add/remove
	// without a valid signature (4302). Needs MasterKey.
	RequireConversationSignature bool
	// RequireBlacklistSignature refuses blacklist changes without a valid
	// signature (4546; blacklistSignatureFactory). Needs MasterKey.
	RequireBlacklistSignature bool
	// SignatureMaxAge is how old a signature's timestamp may be (and how far
	// in the future). Default 1 hour.
	SignatureMaxAge time.Duration

	// Authenticator, when set, decides every session open.
	Authenticator Authenticator
	// UserResolver, when set, serves POST {prefix}/1.1/rtm/sign, which the
	// SDK's createIMClient(AV.User) calls: it turns the app user's
	// session token into the client id the user logs in as (its objectId:
	// the SDK logs in as user.id), and the hub answers with a login
	// signature for it. Without it that endpoint answers 404.
	UserResolver UserResolver

	// PublicURL is the base URL clients reach the hub at, e.g.
	// "https://chat.example.com/im". When empty, the router endpoint derives
	// the websocket URL from the request (Host, X-Forwarded-Proto,
	// X-Forwarded-Host) and the mount prefix.
	PublicURL string
	// AllowedOrigins lists origin host patterns (path.Match syntax, e.g.
	// "example.com", "*.example.com", "localhost:*") that may open
	// websockets and call the REST endpoints from a browser. nil allows
	// every origin; an empty non-nil slice allows same-origin pages only.
	AllowedOrigins []string

	// Logger receives structured logs. Default slog.Default().
	Logger *slog.Logger

	// Hooks are values implementing any of the realtime.*Hook interfaces
	// (MessageReceivedHook, ReceiversOfflineHook, ...). Each is
	// type-asserted once, in New; several values may implement the same
	// hook: they run in order.
	Hooks []any
	// HookTimeout bounds each hook call. Default 5 s.
	HookTimeout time.Duration
	// HookFailure decides what a failed hook (error, timeout, panic) does.
	// Default HookFailureIgnore, as on LeanCloud.
	HookFailure HookFailurePolicy

	// Pusher sends push notifications to offline members' devices. nil
	// disables push.
	Pusher realtime.Pusher
	// PushTemplate is the static push content (a JSON object string) used
	// when neither a ReceiversOffline hook nor the sender's pushData gives
	// one; it may contain ${convId}, ${timestamp} and ${fromClientId}.
	// Empty means no push unless pushData or a hook provides content.
	PushTemplate string
	// DeviceStore keeps push devices and the push queue. Default: the
	// Store, when it implements realtime.DeviceStore.
	DeviceStore realtime.DeviceStore

	// MessageTypes, when set, validates every message body sent or edited
	// by clients: built-in typed messages must have the right shape and
	// custom types registered with a validator must pass it (4410
	// otherwise). Plain text and unregistered types pass untouched. nil
	// checks nothing.
	MessageTypes *typedmsg.Registry

	// DisableEdit and DisableRecall switch off message editing and
	// recalling by clients (LeanCloud's "allow editing/recalling with SDK";
	// both on by default here). Clients then get 4406 / 4407.
	DisableEdit   bool
	DisableRecall bool
	// MemberChange decides who may add or remove other members. Default
	// MembersMayChange.
	MemberChange MemberChangePolicy
	// ConversationVisibility decides which conversations clients' queries
	// find and whether a client may join a group by its id. Default
	// VisibleToAll, as on LeanCloud; VisibleToMembers makes groups
	// private.
	ConversationVisibility ConversationVisibility

	// Broker joins this hub to the other hub processes of a deployment
	// (several nodes behind a load balancer, on one database): what one
	// node does, the others' sessions hear. See Broker, and packages
	// broker/nats and broker/pgnotify. Nil: a single node. With a broker
	// the store must be a realtime.PresenceStore (store.SQL is), and the
	// nodes must share their session token key (SessionSecret or
	// MasterKey), so that a client reconnecting to another node keeps its
	// session.
	Broker Broker
	// Node names this hub among the nodes; unique per running process.
	// Default: random.
	Node string
	// NodeLease is how long a node counts as alive after it last renewed
	// its lease (every third of it). When a node dies, within about
	// NodeLease and a third another node sends its clients' will messages
	// and the others see them offline. Default DefaultNodeLease (15s).
	NodeLease time.Duration

	// SessionTokenTTL is the lifetime of session tokens (used by reconnects).
	// Default 24 hours.
	SessionTokenTTL time.Duration
	// SessionSecret signs session tokens. Default: derived from MasterKey
	// when set; else, for a hub without Authenticator (any client may log
	// in anyway), derived from AppID; else random per process (tokens then
	// do not survive a restart, and after a restart re-logins lose their
	// tag, so single-device sign-on is not enforced until clients log in
	// explicitly again: set it to keep tokens across restarts).
	SessionSecret []byte
	// TrustForwardedFor takes the client address from X-Forwarded-For
	// (hooks' SourceIP, logs). Set it only behind a proxy that sets it.
	TrustForwardedFor bool

	// PingInterval is how often the hub pings an idle socket; a socket that
	// does not answer within PingTimeout is closed (and its clients' will
	// messages sent). Defaults 30 s and 20 s.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// LoginTimeout closes sockets that open no session in time. Default 60 s.
	LoginTimeout time.Duration
	// WriteTimeout bounds one write to a socket. Default 10 s.
	WriteTimeout time.Duration

	// Limits; see Limits.
	Limits Limits

	// Metrics receives counters and latencies (sockets, logins, commands,
	// store batches, deliveries, hooks, pushes, the broker). Default
	// NopMetrics; package metrics/prom implements it on Prometheus.
	Metrics Metrics

	// Clock returns the current time. Default time.Now.
	Clock func() time.Time
}

// Limits bound what one client can make the hub do. Zero fields take the
// defaults given; each limit answers with a coded error when hit.
type Limits struct {
	// MaxFrameSize is the largest websocket frame read (4109 and close).
	// Default 64 KiB.
	MaxFrameSize int64
	// MaxMessageSize is the largest message body (4409). Default 5 KiB, as
	// on LeanCloud.
	MaxMessageSize int
	// MaxMembers is the most members a conversation can have (4304). Default
	// 500 for normal conversations.
	MaxMembers int
	// MaxSubscribers is the most subscribers of a system (service)
	// conversation (4304). Default 100,000. Each node keeps the subscriber
	// list of a service conversation in use in memory (~50 bytes each).
	MaxSubscribers int
	// MaxQueryLimit caps conversation query and history page sizes. Default
	// 100 (history: 1000).
	MaxQueryLimit int
	// MaxMentions is the most client ids in a mention list (4410). Default
	// 100.
	MaxMentions int
	// SendRate and SendBurst are a token bucket per client id (shared by
	// its sessions) for messages (4116). Defaults 50/s and 100.
	SendRate  float64
	SendBurst int
	// Per client id, for the other command families (4116 beyond them;
	// acks and reads beyond ReadRate are dropped):
	// ConversationRate: creating, member changes, updates, mutes, roles,
	// blacklists (default 20/s, burst 100); PatchRate: edits and recalls
	// (20/s, 50); QueryRate: conversation queries, history, member lists,
	// online status (50/s, 200); ReadRate: acks and reads (100/s, 500).
	ConversationRate Rate
	PatchRate        Rate
	QueryRate        Rate
	ReadRate         Rate
	// RESTMessageRate is one bucket for the whole app shared by the REST
	// API's message calls (sends, broadcasts, edits, recalls), as
	// LeanCloud's per-app quota; beyond it they answer HTTP 429 with code
	// 429. Default 30/s (LeanCloud's 1,800 a minute), burst 300.
	RESTMessageRate Rate
	// LoginRate limits session opens per source address (4116; default
	// 50/s, burst 500: offices and mobile carriers share addresses), and
	// MaxSocketsPerAddress the sockets open from one address (closed with
	// 1013 beyond; default 5,000). Loopback addresses are not limited (a
	// proxy on the same host, load tests); behind a proxy elsewhere set
	// TrustForwardedFor, or every client has the proxy's address.
	LoginRate            Rate
	MaxSocketsPerAddress int
	// MaxSessionsPerClient bounds the live sessions of one client id
	// (its devices and tabs) on this hub (4103 beyond). Default 64.
	MaxSessionsPerClient int
	// MaxSessionsPerSocket is how many client ids one socket may multiplex.
	// Default 16.
	MaxSessionsPerSocket int
	// MaxConcurrentSyncs bounds the login syncs (unread counts, missed
	// patches) reading the store at once. Logins beyond it wait their
	// turn (their session is open already; the unread notification follows),
	// so that a reconnect storm after a restart leaves store connections to
	// message delivery and to the sessions already back. Default 8: keep
	// it below the PostgreSQL pool (store.Options.MaxConns, 16).
	MaxConcurrentSyncs int
	// OutboundQueue is the number of frames waiting for a slow socket before
	// it is closed as a slow consumer. Default 1024.
	OutboundQueue int
	// OutboundBytes bounds the bytes of those frames. Default 4 MiB.
	OutboundBytes int
	// ConversationCacheBytes bounds the memory of the conversations the hub
	// keeps (members, attributes, newest messages), estimated; the least
	// recently used idle ones are dropped beyond it. Default 256 MiB.
	ConversationCacheBytes int64
	// MaxPushDataSize is the largest pushData accepted; a larger one, or
	// one that is not a JSON object, refuses the message (4410). Default
	// 4 KiB.
	MaxPushDataSize int
}

// HookFailurePolicy decides what happens when a hook fails.
type HookFailurePolicy int

const (
	// HookFailureIgnore logs the failure and goes on as if the hook were
	// absent (LeanCloud's default).
	HookFailureIgnore HookFailurePolicy = iota
	// HookFailureRefuse refuses the client's request with 4200.
	HookFailureRefuse
)

// MemberChangePolicy decides who may add or remove other members.
type MemberChangePolicy int

const (
	// MembersMayChange lets any member add others and remove others.
	MembersMayChange MemberChangePolicy = iota
	// CreatorMayChange lets only the creator add or remove others; anyone
	// may still leave.
	CreatorMayChange
	// NobodyMayChange lets no client change members of others (the Go API
	// still can); anyone may still leave.
	NobodyMayChange
)

// LoginRequest is what an Authenticator sees.
type LoginRequest struct {
	// HTTP is the websocket upgrade request: the host app's cookies and
	// headers are there. Do not read its body.
	HTTP     *http.Request
	AppID    string
	ClientID string
	Tag      string
	DeviceID string
	// Reconnect is true for the SDK's automatic re-login.
	Reconnect bool
	// SessionTokenValid is true when a reconnect came with a valid session
	// token issued by this hub (the client was authenticated before).
	SessionTokenValid bool
	// Signature fields sent by the client (signatureFactory).
	Signature string
	Timestamp int64
	Nonce     string
}

// Authenticator decides whether a client may open a session. Return nil to
// allow, a *realtime.Error to refuse with its code (e.g.
// realtime.ErrSignatureFailed), any other error to refuse with 4102.
type Authenticator interface {
	Authenticate(ctx context.Context, req *LoginRequest) error
}

// UserResolver turns an application user's session token into the client
// id that user logs in as. Return a *realtime.Error to refuse with its
// code; any other error refuses with 4102.
type UserResolver interface {
	ResolveUser(ctx context.Context, sessionToken string) (clientID string, err error)
}

// UserResolverFunc adapts a function to UserResolver.
type UserResolverFunc func(ctx context.Context, sessionToken string) (string, error)

// ResolveUser calls f.
func (f UserResolverFunc) ResolveUser(ctx context.Context, sessionToken string) (string, error) {
	return f(ctx, sessionToken)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(ctx context.Context, req *LoginRequest) error

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, req *LoginRequest) error {
	return f(ctx, req)
}

func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.NodeLease <= 0 {
		out.NodeLease = DefaultNodeLease
	}
	if (out.RequireLoginSignature || out.RequireConversationSignature || out.RequireBlacklistSignature) && out.MasterKey == "" {
		return out, errors.New("hub: signatures required but MasterKey is empty")
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&out.SignatureMaxAge, time.Hour)
	def(&out.HookTimeout, 5*time.Second)
	def(&out.SessionTokenTTL, 24*time.Hour)
	def(&out.PingInterval, 30*time.Second)
	def(&out.PingTimeout, 20*time.Second)
	def(&out.LoginTimeout, 60*time.Second)
	def(&out.WriteTimeout, 10*time.Second)
	l := &out.Limits
	if l.MaxFrameSize <= 0 {
		l.MaxFrameSize = 64 << 10
	}
	if l.MaxMessageSize <= 0 {
		l.MaxMessageSize = 5 << 10
	}
	if l.MaxMembers <= 0 {
		l.MaxMembers = 500
	}
	if l.MaxSubscribers <= 0 {
		l.MaxSubscribers = 100_000
	}
	if l.MaxQueryLimit <= 0 {
		l.MaxQueryLimit = 100
	}
	if l.MaxMentions <= 0 {
		l.MaxMentions = 100
	}
	if l.SendRate <= 0 {
		l.SendRate = 50
	}
	if l.SendBurst <= 0 {
		l.SendBurst = 100
	}
	rate := func(r *Rate, perSecond float64, burst int) {
		if r.PerSecond <= 0 {
			r.PerSecond = perSecond
		}
		if r.Burst <= 0 {
			r.Burst = burst
		}
	}
	rate(&l.ConversationRate, 20, 100)
	rate(&l.PatchRate, 20, 50)
	rate(&l.QueryRate, 50, 200)
	rate(&l.ReadRate, 100, 500)
	rate(&l.RESTMessageRate, 30, 300)
	rate(&l.LoginRate, 50, 500)
	if l.MaxSocketsPerAddress <= 0 {
		l.MaxSocketsPerAddress = 5000
	}
	if l.MaxSessionsPerClient <= 0 {
		l.MaxSessionsPerClient = 64
	}
	if l.MaxSessionsPerSocket <= 0 {
		l.MaxSessionsPerSocket = 16
	}
	if l.OutboundQueue <= 0 {
		l.OutboundQueue = 1024
	}
	if l.MaxConcurrentSyncs <= 0 {
		l.MaxConcurrentSyncs = 8
	}
	if l.OutboundBytes <= 0 {
		l.OutboundBytes = 4 << 20
	}
	if l.ConversationCacheBytes <= 0 {
		l.ConversationCacheBytes = 256 << 20
	}
	if l.MaxPushDataSize <= 0 {
		l.MaxPushDataSize = 4 << 10
	}
	if out.Clock == nil {
		out.Clock = time.Now
	}
	if out.Metrics == nil {
		out.Metrics = NopMetrics{}
	}
	return out, nil
}

// errFromHook is what a failed hook turns into under HookFailureRefuse.
var errFromHook = realtime.ErrInternal.WithDetail("hook failed")

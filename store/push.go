package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/leanhub/realtime"
)

func validDevice(platform realtime.Platform, token string) error {
	if platform == "" || len(platform) > 32 || !validText(string(platform)) {
		return realtime.ErrInvalidCommand.WithDetail("invalid platform %q", platform)
	}
	if token == "" || len(token) > 4096 || !validText(token) {
		return realtime.ErrInvalidCommand.WithDetail("invalid device token")
	}
	return nil
}

// RegisterDevice implements realtime.DeviceStore. Registering a token again
// for the same client updates topic and profile and keeps the badge; moving
// it to another client starts from d.Badge.
func (s *SQL) RegisterDevice(ctx context.Context, d realtime.Device) error {
	if err := validDevice(d.Platform, d.Token); err != nil {
		return err
	}
	if !validClientID(d.ClientID) {
		return realtime.ErrInvalidMessage.WithDetail("invalid client id %q", d.ClientID)
	}
	if !validText(d.Topic) || !validText(d.Profile) {
		return realtime.ErrInvalidCommand.WithDetail("invalid topic or profile")
	}
	updated := timeMs(d.UpdatedAt)
	if updated == 0 {
		updated = s.nowMs()
	}
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		_, err := tx.NewRaw(`INSERT INTO devices (platform, token, client_id, topic, profile, badge, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (platform, token) DO UPDATE SET client_id = excluded.client_id, topic = excluded.topic,
			profile = excluded.profile, updated_at = excluded.updated_at,
			badge = CASE WHEN devices.client_id = excluded.client_id THEN devices.badge ELSE excluded.badge END`,
			string(d.Platform), d.Token, d.ClientID, d.Topic, d.Profile, max(d.Badge, 0), updated).Exec(ctx)
		return err
	})
	return wrapInfra("register device", err)
}

// UnregisterDevice implements realtime.DeviceStore.
func (s *SQL) UnregisterDevice(ctx context.Context, platform realtime.Platform, token string) error {
	if validDevice(platform, token) != nil {
		return nil
	}
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		_, err := tx.NewRaw("DELETE FROM devices WHERE platform = ? AND token = ?", string(platform), token).Exec(ctx)
		return err
	})
	return wrapInfra("unregister device", err)
}

type deviceRow struct {
	Platform  string `bun:"platform"`
	Token     string `bun:"token"`
	ClientID  string `bun:"client_id"`
	Topic     string `bun:"topic"`
	Profile   string `bun:"profile"`
	Badge     int    `bun:"badge"`
	UpdatedAt int64  `bun:"updated_at"`
}

// Devices implements realtime.DeviceStore; devices come sorted by client
// id, platform and token.
func (s *SQL) Devices(ctx context.Context, clientIDs []string) ([]realtime.Device, error) {
	if len(clientIDs) == 0 {
		return []realtime.Device{}, nil
	}
	var rows []deviceRow
	if err := s.r.NewRaw("SELECT platform, token, client_id, topic, profile, badge, updated_at FROM devices "+
		"WHERE client_id IN (?) ORDER BY client_id, platform, token", bun.In(clientIDs)).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("store: devices: %w", err)
	}
	out := make([]realtime.Device, len(rows))
	for i, r := range rows {
		out[i] = realtime.Device{ClientID: r.ClientID, Platform: realtime.Platform(r.Platform), Token: r.Token,
			Topic: r.Topic, Profile: r.Profile, Badge: r.Badge, UpdatedAt: msTime(r.UpdatedAt)}
	}
	return out, nil
}

// IncrementBadges implements realtime.DeviceStore with one UPDATE ...
// RETURNING for all the devices. A device listed twice is incremented
// once. Unknown (or malformed) devices get -1.
func (s *SQL) IncrementBadges(ctx context.Context, devices []realtime.Device) ([]int, error) {
	out := make([]int, len(devices))
	type key struct{ platform, token string }
	var platforms, tokens []string
	seen := map[key]bool{}
	for i, d := range devices {
		out[i] = -1
		k := key{string(d.Platform), d.Token}
		if validDevice(d.Platform, d.Token) != nil || seen[k] {
			continue
		}
		seen[k] = true
		platforms, tokens = append(platforms, k.platform), append(tokens, k.token)
	}
	if len(platforms) == 0 {
		return out, nil
	}
	var rows []struct {
		Platform string `bun:"platform"`
		Token    string `bun:"token"`
		Badge    int    `bun:"badge"`
	}
	table, args := s.derivedTable([]string{"p:text", "t:text"}, platforms, tokens)
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		return tx.NewRaw("UPDATE devices SET badge = devices.badge + 1 FROM "+table+
			" WHERE devices.platform = v.p AND devices.token = v.t RETURNING devices.platform, devices.token, devices.badge",
			args...).Scan(ctx, &rows)
	})
	if err != nil && !isNoRows(err) {
		return nil, wrapInfra("increment badges", err)
	}
	got := make(map[key]int, len(rows))
	for _, r := range rows {
		got[key{r.Platform, r.Token}] = r.Badge
	}
	for i, d := range devices {
		if b, ok := got[key{string(d.Platform), d.Token}]; ok {
			out[i] = b
		}
	}
	return out, nil
}

// ResetBadge implements realtime.DeviceStore; unknown devices are ignored.
func (s *SQL) ResetBadge(ctx context.Context, platform realtime.Platform, token string) error {
	if validDevice(platform, token) != nil {
		return nil
	}
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		_, err := tx.NewRaw("UPDATE devices SET badge = 0 WHERE platform = ? AND token = ?", string(platform), token).Exec(ctx)
		return err
	})
	return wrapInfra("reset badge", err)
}

// queued is the JSON body of a push_queue row: the notification without
// its attempts (a column).
type queued struct {
	ID       string          `json:"id"`
	Device   realtime.Device `json:"device"`
	ConvID   string          `json:"conv,omitempty"`
	From     string          `json:"from,omitempty"`
	MsgID    string          `json:"mid,omitempty"`
	Payload  json.RawMessage `json:"payload,omitempty"`
	Profile  string          `json:"profile,omitempty"`
	TeamID   string          `json:"team,omitempty"`
	Created  int64           `json:"created"`
	Attempts int             `json:"-"`
}

// EnqueuePush implements realtime.DeviceStore. Notifications without an ID
// get one; a notification whose ID is queued already is not queued again.
// A zero CreatedAt is set to the clock; each is due at once.
func (s *SQL) EnqueuePush(ctx context.Context, ns []*realtime.Notification) error {
	if len(ns) == 0 {
		return nil
	}
	now := s.clock()
	var b strings.Builder
	var args []any
	b.WriteString("INSERT INTO push_queue (id, body, attempts, created_at, due_at, lease_until) VALUES ")
	for i, n := range ns {
		if n == nil {
			return realtime.ErrInvalidCommand.WithDetail("nil notification")
		}
		if len(n.Payload) > 0 && !json.Valid(n.Payload) {
			return realtime.ErrInvalidCommand.WithDetail("notification payload is not JSON")
		}
		if n.ID == "" {
			n.ID = newID(now)
		}
		if n.CreatedAt.IsZero() {
			n.CreatedAt = now
		}
		q := queued{ID: n.ID, Device: n.Device, ConvID: n.ConvID, From: n.From, MsgID: n.MsgID,
			Payload: n.Payload, Profile: n.Profile, TeamID: n.TeamID, Created: n.CreatedAt.UnixMilli()}
		body, err := json.Marshal(q)
		if err != nil {
			return realtime.ErrInvalidCommand.WithDetail("notification: %v", err)
		}
		if !validText(string(body)) {
			return realtime.ErrInvalidCommand.WithDetail("notification is not UTF-8 text")
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, 0)")
		args = append(args, n.ID, string(body), n.Attempts, n.CreatedAt.UnixMilli(), now.UnixMilli())
	}
	b.WriteString(" ON CONFLICT (id) DO NOTHING")
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		_, err := tx.NewRaw(b.String(), args...).Exec(ctx)
		return err
	})
	return wrapInfra("enqueue push", err)
}

// ClaimPush implements realtime.DeviceStore: rows due at now and not
// leased (lease_until <= now) are leased until now+lease, oldest due first.
// On PostgreSQL concurrent claimers skip each other's rows (FOR UPDATE SKIP
// LOCKED); on SQLite write transactions are serialized. Expired
// notifications are returned too: the caller drops them (Expired).
func (s *SQL) ClaimPush(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*realtime.Notification, error) {
	if limit <= 0 {
		return []*realtime.Notification{}, nil
	}
	nowMs := now.UnixMilli()
	lock := ""
	if s.pg {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var rows []claimRow
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		return tx.NewRaw("UPDATE push_queue SET lease_until = ? WHERE id IN (SELECT id FROM push_queue "+
			"WHERE due_at <= ? AND lease_until <= ? ORDER BY due_at, id LIMIT ?"+lock+") RETURNING body, attempts, due_at",
			now.Add(lease).UnixMilli(), nowMs, nowMs, limit).Scan(ctx, &rows)
	})
	if err != nil {
		return nil, wrapInfra("claim push", err)
	}
	// RETURNING order is unspecified: oldest due first.
	slices.SortFunc(rows, func(a, b claimRow) int {
		if c := cmp.Compare(a.DueAt, b.DueAt); c != 0 {
			return c
		}
		return strings.Compare(a.Body, b.Body)
	})
	out := make([]*realtime.Notification, 0, len(rows))
	for _, r := range rows {
		var q queued
		if err := json.Unmarshal([]byte(r.Body), &q); err != nil {
			return nil, fmt.Errorf("store: claim push: decode: %w", err)
		}
		out = append(out, &realtime.Notification{ID: q.ID, Device: q.Device, ConvID: q.ConvID, From: q.From,
			MsgID: q.MsgID, Payload: q.Payload, Profile: q.Profile, TeamID: q.TeamID,
			CreatedAt: time.UnixMilli(q.Created), Attempts: r.Attempts})
	}
	return out, nil
}

type claimRow struct {
	Body     string `bun:"body"`
	Attempts int    `bun:"attempts"`
	DueAt    int64  `bun:"due_at"`
}

// CompletePush implements realtime.DeviceStore.
func (s *SQL) CompletePush(ctx context.Context, id string) error {
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		_, err := tx.NewRaw("DELETE FROM push_queue WHERE id = ?", id).Exec(ctx)
		return err
	})
	return wrapInfra("complete push", err)
}

// RetryPush implements realtime.DeviceStore: attempts + 1, due at next,
// lease released.
func (s *SQL) RetryPush(ctx context.Context, id string, next time.Time) error {
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		_, err := tx.NewRaw("UPDATE push_queue SET attempts = attempts + 1, due_at = ?, lease_until = 0 WHERE id = ?",
			next.UnixMilli(), id).Exec(ctx)
		return err
	})
	return wrapInfra("retry push", err)
}

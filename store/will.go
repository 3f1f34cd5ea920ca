package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/cluster"
)

// SetWill implements realtime.Store. The will's message is kept as JSON;
// its body goes through the same checks as an appended message (except
// membership, checked when it is sent). A zero SetAt is set to the clock.
func (s *SQL) SetWill(ctx context.Context, w realtime.Will) error {
	if !validClientID(w.ClientID) {
		return realtime.ErrInvalidMessage.WithDetail("invalid client id %q", w.ClientID)
	}
	m := w.Message
	if m.From == "" {
		m.From = w.ClientID
	}
	if err := s.checkMessage(&m); err != nil {
		return err
	}
	body, err := json.Marshal(w.Message)
	if err != nil {
		return fmt.Errorf("store: set will: %w", err)
	}
	setAt := timeMs(w.SetAt)
	if setAt == 0 {
		setAt = s.nowMs()
	}
	err = s.writeTx(ctx, func(tx bun.Tx) error {
		_, err := tx.NewRaw("INSERT INTO wills (client_id, body, set_at) VALUES (?, ?, ?) "+
			"ON CONFLICT (client_id) DO UPDATE SET body = excluded.body, set_at = excluded.set_at",
			w.ClientID, string(body), setAt).Exec(ctx)
		return err
	})
	return wrapInfra("set will", err)
}

// TakeWill implements realtime.Store: the delete and the read are one
// statement, so two callers never both get the will.
func (s *SQL) TakeWill(ctx context.Context, clientID string) (*realtime.Will, error) {
	if !validClientID(clientID) {
		return nil, nil
	}
	var rows []struct {
		Body  string `bun:"body"`
		SetAt int64  `bun:"set_at"`
	}
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		return tx.NewRaw("DELETE FROM wills WHERE client_id = ? RETURNING body, set_at", clientID).Scan(ctx, &rows)
	})
	if err != nil {
		return nil, wrapInfra("take will", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	w := &realtime.Will{ClientID: clientID, SetAt: msTime(rows[0].SetAt)}
	if err := json.Unmarshal([]byte(rows[0].Body), &w.Message); err != nil {
		return nil, fmt.Errorf("store: take will: decode: %w", err)
	}
	return w, nil
}

// ClearWill implements realtime.Store.
func (s *SQL) ClearWill(ctx context.Context, clientID string) error {
	if !validClientID(clientID) {
		return nil
	}
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		_, err := tx.NewRaw("DELETE FROM wills WHERE client_id = ?", clientID).Exec(ctx)
		return err
	})
	return wrapInfra("clear will", err)
}

// RevokeSessions implements realtime.Store.
func (s *SQL) RevokeSessions(ctx context.Context, clientID, device string, at time.Time) error {
	if !validClientID(clientID) {
		return realtime.ErrInvalidMessage.WithDetail("invalid client id %q", clientID)
	}
	if len(device) > 256 || !validText(device) {
		return realtime.ErrInvalidMessage.WithDetail("invalid device")
	}
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		_, err := tx.NewRaw("INSERT INTO session_revocations (client_id, device, revoked_at) VALUES (?, ?, ?) "+
			"ON CONFLICT (client_id, device) DO UPDATE SET revoked_at = CASE WHEN excluded.revoked_at > "+
			"session_revocations.revoked_at THEN excluded.revoked_at ELSE session_revocations.revoked_at END",
			clientID, device, at.UnixMicro()).Exec(ctx)
		if err != nil {
			return err
		}
		return s.announceTx(ctx, tx, &cluster.Event{Kind: cluster.KindRevoke,
			Revoke: &cluster.Revoke{Client: clientID, Device: device, At: at.UnixMicro()}})
	})
	return wrapInfra("revoke sessions", err)
}

// Revocations implements realtime.Store.
func (s *SQL) Revocations(ctx context.Context, since time.Time) ([]realtime.Revocation, error) {
	var rows []struct {
		ClientID  string `bun:"client_id"`
		Device    string `bun:"device"`
		RevokedAt int64  `bun:"revoked_at"`
	}
	if err := s.r.NewRaw("SELECT client_id, device, revoked_at FROM session_revocations WHERE revoked_at > ?", since.UnixMicro()).
		Scan(ctx, &rows); err != nil && !isNoRows(err) {
		return nil, fmt.Errorf("store: revocations: %w", err)
	}
	out := make([]realtime.Revocation, len(rows))
	for i, r := range rows {
		out[i] = realtime.Revocation{ClientID: r.ClientID, Device: r.Device, At: time.UnixMicro(r.RevokedAt)}
	}
	return out, nil
}

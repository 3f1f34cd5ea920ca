package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/uptrace/bun"

	"github.com/leanhub/realtime"
)

// Moderation: member roles (members.role), silenced members
// (conv_silenced) and blacklists (conv_blocked). GetConversation fills
// Conversation.Roles and Silenced, so the hub checks sends and permissions
// from memory.

// validRole accepts the roles a store keeps ("" and RoleMember are the
// same: no role).
func validRole(r realtime.MemberRole) bool {
	return r == "" || r == realtime.RoleMember || r == realtime.RoleManager
}

// SetRole implements realtime.Store.
func (s *SQL) SetRole(ctx context.Context, convID, clientID string, role realtime.MemberRole) error {
	if !validRole(role) {
		return realtime.ErrInvalidCommand.WithDetail("unknown role %q", role)
	}
	if role == realtime.RoleMember {
		role = ""
	}
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		if _, err := s.loadConv(ctx, tx, convID, true); err != nil {
			return err
		}
		res, err := tx.NewRaw("UPDATE members SET role = ? WHERE conv_id = ? AND client_id = ?", string(role), convID, clientID).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return realtime.ErrConvMembershipNeeded.WithDetail("%s is not a member", clientID)
		}
		return s.convChanged(ctx, tx, convID)
	})
	return wrapInfra("set role", err)
}

func checkIDs(ids []string) error {
	for _, id := range ids {
		if !validClientID(id) {
			return realtime.ErrInvalidMessage.WithDetail("invalid client id %q", id)
		}
	}
	return nil
}

// Silence implements realtime.Store.
func (s *SQL) Silence(ctx context.Context, convID string, clientIDs []string, until time.Time) error {
	if err := checkIDs(clientIDs); err != nil {
		return err
	}
	if len(clientIDs) == 0 {
		return nil
	}
	ids := slices.Compact(slices.Sorted(slices.Values(clientIDs)))
	now := s.nowMs()
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		if _, err := s.loadConv(ctx, tx, convID, true); err != nil {
			return err
		}
		convs, untils, ats := make([]string, len(ids)), make([]int64, len(ids)), make([]int64, len(ids))
		for i := range ids {
			convs[i], untils[i], ats[i] = convID, timeMs(until), now
		}
		table, args := s.derivedTable([]string{"c:text", "s:text", "u:bigint", "a:bigint"}, convs, ids, untils, ats)
		// WHERE true: SQLite needs it to parse an upsert from a SELECT.
		_, err := tx.NewRaw("INSERT INTO conv_silenced (conv_id, client_id, until_ts, created_at) SELECT v.c, v.s, v.u, v.a FROM "+
			table+" WHERE true ON CONFLICT (conv_id, client_id) DO UPDATE SET until_ts = excluded.until_ts", args...).Exec(ctx)
		if err != nil {
			return err
		}
		return s.convChanged(ctx, tx, convID)
	})
	return wrapInfra("silence", err)
}

// Unsilence implements realtime.Store.
func (s *SQL) Unsilence(ctx context.Context, convID string, clientIDs []string) error {
	if len(clientIDs) == 0 {
		return nil
	}
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		if _, err := s.loadConv(ctx, tx, convID, true); err != nil {
			return err
		}
		if _, err := tx.NewRaw("DELETE FROM conv_silenced WHERE conv_id = ? AND client_id IN (?)", convID, bun.In(clientIDs)).Exec(ctx); err != nil {
			return err
		}
		return s.convChanged(ctx, tx, convID)
	})
	return wrapInfra("unsilence", err)
}

// Block implements realtime.Store.
func (s *SQL) Block(ctx context.Context, convID string, clientIDs []string) (*realtime.Conversation, []string, error) {
	if err := checkIDs(clientIDs); err != nil {
		return nil, nil, err
	}
	ids := slices.Compact(slices.Sorted(slices.Values(clientIDs)))
	now := s.nowMs()
	var out *realtime.Conversation
	var removed []string
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		row, err := s.loadConv(ctx, tx, convID, true)
		if err != nil {
			return err
		}
		removed = nil
		if len(ids) > 0 {
			convs, ats := make([]string, len(ids)), make([]int64, len(ids))
			for i := range ids {
				convs[i], ats[i] = convID, now
			}
			table, args := s.derivedTable([]string{"c:text", "s:text", "a:bigint"}, convs, ids, ats)
			if _, err := tx.NewRaw("INSERT INTO conv_blocked (conv_id, client_id, created_at) SELECT v.c, v.s, v.a FROM "+
				table+" WHERE true ON CONFLICT (conv_id, client_id) DO NOTHING", args...).Exec(ctx); err != nil {
				return err
			}
			if !row.Transient {
				if err := tx.NewRaw("DELETE FROM members WHERE conv_id = ? AND client_id IN (?) RETURNING client_id",
					row.ID, bun.In(ids)).Scan(ctx, &removed); err != nil && !isNoRows(err) {
					return err
				}
				slices.Sort(removed)
				if len(removed) > 0 {
					if err := setMemberCount(ctx, tx, row, -len(removed), now); err != nil {
						return err
					}
				}
			}
		}
		if err := s.convChanged(ctx, tx, row.ID); err != nil {
			return err
		}
		out, err = s.fillOne(ctx, tx, row)
		return err
	})
	if err != nil {
		return nil, nil, wrapInfra("block", err)
	}
	return out, removed, nil
}

// Unblock implements realtime.Store.
func (s *SQL) Unblock(ctx context.Context, convID string, clientIDs []string) error {
	if len(clientIDs) == 0 {
		return nil
	}
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		if _, err := s.loadConv(ctx, tx, convID, true); err != nil {
			return err
		}
		if _, err := tx.NewRaw("DELETE FROM conv_blocked WHERE conv_id = ? AND client_id IN (?)", convID, bun.In(clientIDs)).Exec(ctx); err != nil {
			return err
		}
		return s.convChanged(ctx, tx, convID)
	})
	return wrapInfra("unblock", err)
}

// Blocked implements realtime.Store.
func (s *SQL) Blocked(ctx context.Context, convID string, clientIDs []string) ([]string, error) {
	if len(clientIDs) == 0 || !validID(convID) {
		return nil, nil
	}
	var out []string
	if err := s.r.NewRaw("SELECT client_id FROM conv_blocked WHERE conv_id = ? AND client_id IN (?) ORDER BY client_id",
		convID, bun.In(clientIDs)).Scan(ctx, &out); err != nil && !isNoRows(err) {
		return nil, fmt.Errorf("store: blocked: %w", err)
	}
	return out, nil
}

// ListSilenced implements realtime.Store.
func (s *SQL) ListSilenced(ctx context.Context, convID, after string, limit int) ([]string, error) {
	return s.listIDs(ctx, "conv_silenced", convID, after, limit)
}

// ListBlocked implements realtime.Store.
func (s *SQL) ListBlocked(ctx context.Context, convID, after string, limit int) ([]string, error) {
	return s.listIDs(ctx, "conv_blocked", convID, after, limit)
}

func (s *SQL) listIDs(ctx context.Context, table, convID, after string, limit int) ([]string, error) {
	if !validID(convID) {
		return nil, realtime.ErrConvNotFound.WithDetail("malformed conversation id %q", convID)
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	out := []string{}
	if err := s.r.NewRaw("SELECT client_id FROM "+table+" WHERE conv_id = ? AND client_id > ? ORDER BY client_id LIMIT ?",
		convID, after, limit).Scan(ctx, &out); err != nil && !isNoRows(err) {
		return nil, fmt.Errorf("store: list %s: %w", table, err)
	}
	return out, nil
}

// fillModeration sets the Roles and Silenced of conversations read with
// their members (one query each for all of them).
func (s *SQL) fillModeration(ctx context.Context, db bun.IDB, convs []*realtime.Conversation) error {
	ids := make([]string, 0, len(convs))
	byID := make(map[string]*realtime.Conversation, len(convs))
	for _, c := range convs {
		ids = append(ids, c.ID)
		byID[c.ID] = c
	}
	if len(ids) == 0 {
		return nil
	}
	var roles []struct {
		ConvID   string `bun:"conv_id"`
		ClientID string `bun:"client_id"`
		Role     string `bun:"role"`
	}
	if err := db.NewRaw("SELECT conv_id, client_id, role FROM members WHERE conv_id IN (?) AND role <> ''", bun.In(ids)).
		Scan(ctx, &roles); err != nil && !isNoRows(err) {
		return fmt.Errorf("store: load roles: %w", err)
	}
	for _, r := range roles {
		c := byID[r.ConvID]
		if c.Roles == nil {
			c.Roles = map[string]realtime.MemberRole{}
		}
		c.Roles[r.ClientID] = realtime.MemberRole(r.Role)
	}
	var silenced []struct {
		ConvID   string `bun:"conv_id"`
		ClientID string `bun:"client_id"`
		Until    int64  `bun:"until_ts"`
	}
	if err := db.NewRaw("SELECT conv_id, client_id, until_ts FROM conv_silenced WHERE conv_id IN (?) AND (until_ts = 0 OR until_ts > ?)",
		bun.In(ids), s.nowMs()).Scan(ctx, &silenced); err != nil && !isNoRows(err) {
		return fmt.Errorf("store: load silenced: %w", err)
	}
	for _, r := range silenced {
		c := byID[r.ConvID]
		if c.Silenced == nil {
			c.Silenced = map[string]time.Time{}
		}
		c.Silenced[r.ClientID] = msTime(r.Until)
	}
	return nil
}

package store

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/leanhub/realtime"
)

var _ realtime.PresenceStore = (*SQL)(nil)

type presenceRow struct {
	Node    string `bun:"node"`
	Session string `bun:"session"`
	Client  string `bun:"client_id"`
	Tag     string `bun:"tag"`
	Device  string `bun:"device"`
	Since   int64  `bun:"since"`
}

func (r presenceRow) presence() realtime.Presence {
	return realtime.Presence{Node: r.Node, Session: r.Session, ClientID: r.Client, Tag: r.Tag, DeviceID: r.Device,
		Since: time.UnixMicro(r.Since)}
}

// KeepNode implements realtime.PresenceStore.
func (s *SQL) KeepNode(ctx context.Context, node string, until time.Time) (bool, error) {
	var existed bool
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		res, err := tx.NewRaw("UPDATE hub_nodes SET lease_until = ? WHERE node = ?", until.UnixMilli(), node).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			existed = true
			return nil
		}
		_, err = tx.NewRaw("INSERT INTO hub_nodes (node, lease_until) VALUES (?, ?) "+
			"ON CONFLICT (node) DO UPDATE SET lease_until = excluded.lease_until", node, until.UnixMilli()).Exec(ctx)
		return err
	})
	return existed, wrapInfra("keep node", err)
}

// UpdatePresence implements realtime.PresenceStore.
func (s *SQL) UpdatePresence(ctx context.Context, node string, add []realtime.Presence, remove []string) error {
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		for start := 0; start < len(remove); start += 500 {
			ids := remove[start:min(start+500, len(remove))]
			if _, err := tx.NewRaw("DELETE FROM hub_presence WHERE node = ? AND session IN (?)", node, bun.In(ids)).Exec(ctx); err != nil {
				return err
			}
		}
		for start := 0; start < len(add); start += 200 {
			batch := add[start:min(start+200, len(add))]
			rows := make([]presenceRow, len(batch))
			for i, p := range batch {
				rows[i] = presenceRow{Node: node, Session: p.Session, Client: p.ClientID, Tag: p.Tag, Device: p.DeviceID, Since: p.Since.UnixMicro()}
			}
			if _, err := tx.NewInsert().Model(&rows).ModelTableExpr("hub_presence").
				On("CONFLICT (node, session) DO UPDATE").
				Set("client_id = EXCLUDED.client_id, tag = EXCLUDED.tag, device = EXCLUDED.device, since = EXCLUDED.since").
				Exec(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	return wrapInfra("update presence", err)
}

// ListPresence implements realtime.PresenceStore.
func (s *SQL) ListPresence(ctx context.Context) ([]realtime.Presence, error) {
	var rows []presenceRow
	err := s.r.NewRaw("SELECT p.node, p.session, p.client_id, p.tag, p.device, p.since FROM hub_presence p "+
		"JOIN hub_nodes n ON n.node = p.node").Scan(ctx, &rows)
	if err != nil {
		return nil, wrapInfra("list presence", err)
	}
	out := make([]realtime.Presence, len(rows))
	for i, r := range rows {
		out[i] = r.presence()
	}
	return out, nil
}

// ReapNodes implements realtime.PresenceStore. The deletes return what
// they removed, so two reapers never both get a node.
func (s *SQL) ReapNodes(ctx context.Context, now time.Time) ([]string, []realtime.Presence, error) {
	var nodes []string
	var rows []presenceRow
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		nodes, rows = nil, nil
		if err := tx.NewRaw("DELETE FROM hub_nodes WHERE lease_until < ? RETURNING node", now.UnixMilli()).Scan(ctx, &nodes); err != nil {
			return err
		}
		return tx.NewRaw("DELETE FROM hub_presence WHERE node NOT IN (SELECT node FROM hub_nodes) "+
			"RETURNING node, session, client_id, tag, device, since").Scan(ctx, &rows)
	})
	if err != nil {
		return nil, nil, wrapInfra("reap nodes", err)
	}
	out := make([]realtime.Presence, len(rows))
	for i, r := range rows {
		out[i] = r.presence()
	}
	return nodes, out, nil
}

// DropNode implements realtime.PresenceStore.
func (s *SQL) DropNode(ctx context.Context, node string) error {
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		if _, err := tx.NewRaw("DELETE FROM hub_presence WHERE node = ?", node).Exec(ctx); err != nil {
			return err
		}
		_, err := tx.NewRaw("DELETE FROM hub_nodes WHERE node = ?", node).Exec(ctx)
		return err
	})
	return wrapInfra("drop node", err)
}

package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// convQuery answers conversation queries. The where forms the SDKs send are
// supported: objectId (equal or $in), m (equal, $all, $in, $size), tr, sys,
// and $and of those. Clients only see conversations they are members of,
// plus transient and system conversations.
func (h *Hub) convQuery(ctx context.Context, s *session, cm *wire.ConvCommand) (*wire.GenericCommand, error) {
	q := realtime.ConversationQuery{Sort: cm.GetSort(), Skip: int(cm.GetSkip()), Limit: int(cm.GetLimit()), WithLastMessage: true}
	if q.Limit <= 0 {
		q.Limit = 10
	}
	if q.Limit > h.cfg.Limits.MaxQueryLimit {
		q.Limit = h.cfg.Limits.MaxQueryLimit
	}
	if q.Skip < 0 {
		q.Skip = 0
	}
	if ids := cm.GetTempConvIds(); len(ids) > 0 {
		q.IDs = ids
	}
	conditions := len(cm.GetTempConvIds()) > 0
	if w := cm.GetWhere().GetData(); strings.TrimSpace(w) != "" {
		var where map[string]json.RawMessage
		if err := json.Unmarshal([]byte(w), &where); err != nil {
			return nil, realtime.ErrConvQueryFailed.WithDetail("where must be a JSON object")
		}
		// The SDK sends "{}" for a query without conditions.
		conditions = conditions || len(where) > 0
		if err := applyWhere(&q, where); err != nil {
			return nil, err
		}
	}
	if len(q.IDs) > 0 {
		// Lookups by id (the SDK's getConversations asks limit 999, temporary
		// conversations ask none) return every id asked for, up to 1000.
		q.Limit = min(max(int(cm.GetLimit()), len(q.IDs)), 1000)
	}
	h.restrictQuery(&q, s.clientID, conditions)
	convs, err := h.store.QueryConversations(ctx, q)
	if err != nil {
		return nil, err
	}
	compact := cm.GetFlag()&1 != 0
	out := make([]map[string]any, 0, len(convs))
	for _, c := range convs {
		if !h.visibleTo(c, s.clientID) {
			continue
		}
		out = append(out, convJSON(c, compact, h.now()))
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return &wire.GenericCommand{Op: wire.OpType_query_result.Enum(), ConvMessage: &wire.ConvCommand{
		Results: &wire.JsonObjectMessage{Data: proto.String(string(b))}}}, nil
}

func applyWhere(q *realtime.ConversationQuery, where map[string]json.RawMessage) error {
	for k, v := range where {
		switch k {
		case "$and":
			var parts []map[string]json.RawMessage
			if err := json.Unmarshal(v, &parts); err != nil {
				return realtime.ErrConvQueryFailed.WithDetail("bad $and")
			}
			for _, p := range parts {
				if err := applyWhere(q, p); err != nil {
					return err
				}
			}
		case "objectId":
			var id string
			if json.Unmarshal(v, &id) == nil {
				q.IDs = append(q.IDs, id)
				continue
			}
			var cond struct {
				In []string `json:"$in"`
			}
			if err := json.Unmarshal(v, &cond); err != nil || cond.In == nil {
				return realtime.ErrConvQueryFailed.WithDetail("unsupported objectId condition")
			}
			if len(cond.In) > 1000 {
				return realtime.ErrConvQueryFailed.WithDetail("at most 1000 ids")
			}
			q.IDs = append(q.IDs, cond.In...)
		case "m":
			var id string
			if json.Unmarshal(v, &id) == nil {
				q.Member = id
				continue
			}
			var cond struct {
				All  []string `json:"$all"`
				In   []string `json:"$in"`
				Size *int     `json:"$size"`
			}
			if err := json.Unmarshal(v, &cond); err != nil {
				return realtime.ErrConvQueryFailed.WithDetail("unsupported m condition")
			}
			q.AllMembers = append(q.AllMembers, cond.All...)
			if len(cond.In) == 1 {
				q.Member = cond.In[0]
			} else if len(cond.In) > 1 {
				return realtime.ErrConvQueryFailed.WithDetail("m $in with several ids is not supported")
			}
			if cond.Size != nil {
				q.MemberCount = *cond.Size
			}
		case "tr", "transient":
			var b bool
			if json.Unmarshal(v, &b) != nil {
				return realtime.ErrConvQueryFailed.WithDetail("tr must be a boolean")
			}
			q.Transient = &b
		case "sys", "system":
			var b bool
			if json.Unmarshal(v, &b) != nil {
				return realtime.ErrConvQueryFailed.WithDetail("sys must be a boolean")
			}
			q.System = &b
		default:
			return realtime.ErrConvQueryFailed.WithDetail("unsupported query field %q", k)
		}
	}
	return nil
}

// convJSON is a conversation as the SDK's query results carry it.
func convJSON(c *realtime.Conversation, compact bool, now time.Time) map[string]any {
	o := map[string]any{}
	if len(c.Attrs) > 0 && !bytes.Equal(c.Attrs, []byte("null")) {
		_ = json.Unmarshal(c.Attrs, &o)
	}
	o["objectId"] = c.ID
	o["c"] = c.Creator
	o["tr"] = c.Transient
	o["sys"] = c.System
	o["unique"] = c.Unique
	o["name"] = c.Name
	o["createdAt"] = isoTime(c.CreatedAt)
	o["updatedAt"] = isoTime(c.UpdatedAt)
	o["mu"] = nonNil(c.Muted)
	if !compact {
		o["m"] = nonNil(c.Members)
	}
	if c.Temporary && !c.ExpiresAt.IsZero() {
		o["ttl"] = max(0, int(c.ExpiresAt.Sub(now)/time.Second))
	}
	if m := c.LastMessage; m != nil {
		o["lm"] = map[string]any{"__type": "Date", "iso": isoTime(time.UnixMilli(m.Timestamp))}
		o["msg"] = m.Data
		o["msg_mid"] = m.ID
		o["msg_from"] = m.From
		o["msg_timestamp"] = m.Timestamp
		if m.PatchTimestamp > 0 {
			o["patch_timestamp"] = m.PatchTimestamp
		}
	}
	return o
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

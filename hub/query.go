package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/convquery"
	"github.com/leanhub/realtime/internal/wire"
)

// convQuery answers conversation queries (conv query): a where in the
// query language of package internal/convquery (every operator the SDKs'
// ConversationQuery sends, on every _Conversation field and on custom
// attributes as "attr.key" or a bare "key"), a sort on any field but m and
// mu, skip, limit (default 10, capped by Limits.MaxQueryLimit) and flag.
// Flag bit 0 (compact) leaves members out of the results; bit 1
// (withLastMessagesRefreshed) changes nothing: the last message is always
// read from the store, so it is always fresh and always sent. A where or
// sort the language refuses is answered with 4310 and the reason.
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
	if w := cm.GetWhere().GetData(); w != "" {
		where, err := convquery.Parse([]byte(w), nil)
		if err != nil {
			return nil, err
		}
		q.Where = where
	}
	if _, err := realtime.ParseSort(q.Sort); err != nil {
		return nil, err
	}
	visible := h.restrictQuery(&q, s.clientID, int(cm.GetLimit()))
	convs, err := h.store.QueryConversations(ctx, q)
	if err != nil {
		return nil, err
	}
	compact := cm.GetFlag()&1 != 0
	out := make([]map[string]any, 0, len(convs))
	for _, c := range convs {
		if visible(c) {
			out = append(out, convJSON(c, compact, h.now()))
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return &wire.GenericCommand{Op: wire.OpType_query_result.Enum(), ConvMessage: &wire.ConvCommand{
		Results: &wire.JsonObjectMessage{Data: proto.String(string(b))}}}, nil
}

// required returns the conditions f requires: f itself, or the operands
// of its (nested) $and.
func required(f *realtime.Filter) []*realtime.Filter {
	if f == nil {
		return nil
	}
	if f.Op != realtime.FilterAnd {
		return []*realtime.Filter{f}
	}
	var out []*realtime.Filter
	for _, s := range f.Filters {
		out = append(out, required(s)...)
	}
	return out
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

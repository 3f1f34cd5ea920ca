package hub

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"sort"

	realtime "github.com/leanhub/realtime"
)

// The REST API's message and client calls: send, broadcast, edit,
// recall, delete, history (of a conversation, of a subscriber, of a
// client, of the app), online status, unread counts and kicks.

// restSendBody is a message to send. message is a string (a JSON typed
// message body is a string too); a JSON object is taken as its text.
type restSendBody struct {
	From      string          `json:"from_client"`
	Message   json.RawMessage `json:"message"`
	Transient bool            `json:"transient"`
	// NoSync (no_sync) is accepted and ignored: the sender's own
	// devices always get the message (see README, REST API).
	NoSync      bool            `json:"no_sync"`
	PushData    json.RawMessage `json:"push_data"`
	Push        json.RawMessage `json:"push"`
	MentionAll  bool            `json:"mention_all"`
	MentionPids []string        `json:"mention_client_ids"`
	To          []string        `json:"to_clients"`
	Priority    string          `json:"priority"`
}

// messageText reads message: a JSON string, or an object taken as is.
func messageText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", badRequest("message is required")
	}
	if raw[0] == '{' {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return "", badRequest("message must be a string")
		}
		return buf.String(), nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", badRequest("message must be a string")
	}
	if s == "" {
		return "", badRequest("message is required")
	}
	return s, nil
}

// pushData reads push_data (or push): a JSON object, or a string holding
// one; a plain string is the alert text.
func pushData(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] == '{' {
		if !isJSONObject(raw) {
			return nil, badRequest("push_data must be a JSON object or a string")
		}
		return raw, nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil, badRequest("push_data must be a JSON object or a string")
	}
	if isJSONObject(json.RawMessage(s)) {
		return json.RawMessage(s), nil
	}
	b, _ := json.Marshal(map[string]string{"alert": s})
	return b, nil
}

// sendREST sends as from_client through the engine's send path (the
// MessageReceived hooks run, members online get it at once, pushes for
// the others): {"msg-id", "timestamp"}. As on LeanCloud, from_client
// need not be a member: the message is the application's (System).
func sendREST(h *Hub, rc *restCall, b *restSendBody, to []string, broadcast bool) (any, error) {
	if err := h.allowMessageCall(); err != nil {
		return nil, err
	}
	if !validClientID(b.From) {
		return nil, badRequest("from_client is required")
	}
	text, err := messageText(b.Message)
	if err != nil {
		return nil, err
	}
	raw := b.PushData
	if len(raw) == 0 {
		raw = b.Push
	}
	push, err := pushData(raw)
	if err != nil {
		return nil, err
	}
	m := &realtime.Message{ConvID: rc.param("cid"), From: b.From, Data: text,
		MentionAll: b.MentionAll, MentionPids: b.MentionPids, To: to}
	if broadcast {
		m.MentionAll, m.MentionPids = false, nil
	}
	sent, err := h.Send(rc.ctx, m, &SendOptions{Transient: b.Transient, System: true, PushData: push, NoSync: b.NoSync})
	if err != nil {
		return nil, err
	}
	return map[string]any{"msg-id": sent.ID, "timestamp": sent.Timestamp}, nil
}

func restSend(h *Hub, rc *restCall) (any, error) {
	var b restSendBody
	if err := rc.decode(&b); err != nil {
		return nil, err
	}
	if len(b.To) > 0 {
		return nil, badRequest("to_clients is for service conversations")
	}
	return sendREST(h, rc, &b, nil, false)
}

// restSendService is POST service-conversations/{id}/messages: to some
// subscribers (to_clients, at most 20), who alone see it in history.
func restSendService(h *Hub, rc *restCall) (any, error) {
	var b restSendBody
	if err := rc.decode(&b); err != nil {
		return nil, err
	}
	if len(b.To) == 0 || len(b.To) > 20 {
		return nil, badRequest("to_clients must name 1 to 20 subscribers")
	}
	return sendREST(h, rc, &b, b.To, false)
}

// restBroadcast is POST service-conversations/{id}/broadcasts: to every
// subscriber, now (online) or in history.
func restBroadcast(h *Hub, rc *restCall) (any, error) {
	var b restSendBody
	if err := rc.decode(&b); err != nil {
		return nil, err
	}
	return sendREST(h, rc, &b, nil, true)
}

// restPatchBody is an edit or a recall: from_client and timestamp, when
// given, must be the message's (LeanCloud required them: its messages are
// keyed by them), else 4404.
type restPatchBody struct {
	From      string          `json:"from_client"`
	Message   json.RawMessage `json:"message"`
	Timestamp int64           `json:"timestamp"`
}

func restEdit(h *Hub, rc *restCall) (any, error) {
	var b restPatchBody
	if err := rc.decode(&b); err != nil {
		return nil, err
	}
	text, err := messageText(b.Message)
	if err != nil {
		return nil, err
	}
	if err := h.allowMessageCall(); err != nil {
		return nil, err
	}
	if err := patchREST(h, rc, &b, realtime.Patch{Data: text}); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

func restRecall(h *Hub, rc *restCall) (any, error) {
	var b restPatchBody
	if err := rc.decode(&b); err != nil {
		return nil, err
	}
	if err := h.allowMessageCall(); err != nil {
		return nil, err
	}
	if err := patchREST(h, rc, &b, realtime.Patch{Recall: true}); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

// patchREST edits or recalls as the application (Hub.Edit, Hub.Recall)
// through the engine's patch path: members online get the patch.
func patchREST(h *Hub, rc *restCall, b *restPatchBody, p realtime.Patch) error {
	if err := h.stopped(); err != nil {
		return err
	}
	p.ConvID, p.MessageID = rc.param("cid"), rc.param("mid")
	_, err := h.eng.patch(rc.ctx, patchRequest{system: true, patch: p, sender: b.From, timestamp: b.Timestamp})
	return err
}

// restDeleteMessage removes a message on the server only (clients keep
// their copies, as on LeanCloud).
func restDeleteMessage(h *Hub, rc *restCall) (any, error) {
	if err := h.DeleteMessage(rc.ctx, rc.param("cid"), rc.param("mid")); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

// historyQuery reads LeanCloud's history parameters: by default newest
// first from timestamp/msgid (default now) back to till_timestamp/
// till_msgid (default the beginning); reversed pages forward from
// timestamp (default the beginning) to till_timestamp (default now);
// include_start / include_stop make the bounds inclusive; limit 1..1000
// (default 100).
func historyQuery(rc *restCall) (realtime.HistoryQuery, bool, error) {
	var q realtime.HistoryQuery
	var err error
	if q.Start, err = rc.queryInt("timestamp", 0); err != nil {
		return q, false, err
	}
	if q.End, err = rc.queryInt("till_timestamp", 0); err != nil {
		return q, false, err
	}
	q.StartMessageID, q.EndMessageID = rc.query("msgid"), rc.query("till_msgid")
	if q.StartInclusive, err = rc.queryBool("include_start"); err != nil {
		return q, false, err
	}
	if q.EndInclusive, err = rc.queryBool("include_stop"); err != nil {
		return q, false, err
	}
	reversed, err := rc.queryBool("reversed")
	if err != nil {
		return q, false, err
	}
	if reversed {
		q.Direction = realtime.Newer
	}
	limit, err := rc.queryInt("limit", 100)
	if err != nil {
		return q, false, err
	}
	q.Limit = int(min(max(limit, 1), historyMaxLimit))
	q.Start, q.End = max(q.Start, 0), max(q.End, 0)
	return q, reversed, nil
}

// historyJSON is LeanCloud's history answer: newest first unless
// reversed.
func historyJSON(ms []*realtime.Message, reversed bool, rooms map[string]bool) []map[string]any {
	out := make([]map[string]any, 0, len(ms))
	for i := range ms {
		m := ms[i]
		if !reversed {
			m = ms[len(ms)-1-i]
		}
		o := map[string]any{"timestamp": m.Timestamp, "conv-id": m.ConvID, "from": m.From, "msg-id": m.ID,
			"is-conv": true, "is-room": rooms[m.ConvID], "to": m.ConvID, "bin": m.Binary != nil, "data": m.Data}
		if m.Binary != nil {
			o["data"] = base64.StdEncoding.EncodeToString(m.Binary)
		}
		if m.PatchTimestamp > 0 {
			o["patch-timestamp"] = m.PatchTimestamp
		}
		if m.MentionAll {
			o["mention-all"] = true
		}
		if len(m.MentionPids) > 0 {
			o["mention-pids"] = m.MentionPids
		}
		if m.Recalled {
			o["recall"] = true
		}
		out = append(out, o)
	}
	return out
}

func restHistory(h *Hub, rc *restCall) (any, error) {
	return conversationHistory(h, rc, "")
}

// restSubscriberHistory is what a service conversation sent a subscriber:
// broadcasts and the messages addressed to it.
func restSubscriberHistory(h *Hub, rc *restCall) (any, error) {
	id := rc.param("client")
	if !validClientID(id) {
		return nil, badRequest("invalid client id")
	}
	return conversationHistory(h, rc, id)
}

func conversationHistory(h *Hub, rc *restCall, viewer string) (any, error) {
	q, reversed, err := historyQuery(rc)
	if err != nil {
		return nil, err
	}
	_, s, err := h.eng.snapshot(rc.ctx, rc.param("cid"))
	if err != nil {
		return nil, err
	}
	q.ConvID, q.Viewer = s.conv.ID, viewer
	ms, err := h.store.History(rc.ctx, q)
	if err != nil {
		return nil, err
	}
	return historyJSON(ms, reversed, map[string]bool{s.conv.ID: s.conv.Transient}), nil
}

// restAppHistory is GET /rtm/messages: every conversation's messages.
func restAppHistory(h *Hub, rc *restCall) (any, error) {
	return appHistory(h, rc, "")
}

// restClientHistory is GET /rtm/clients/{id}/messages: what a client sent.
func restClientHistory(h *Hub, rc *restCall) (any, error) {
	id := rc.param("client")
	if !validClientID(id) {
		return nil, badRequest("invalid client id")
	}
	return appHistory(h, rc, id)
}

func appHistory(h *Hub, rc *restCall, from string) (any, error) {
	q, reversed, err := historyQuery(rc)
	if err != nil {
		return nil, err
	}
	q.From = from
	ms, err := h.AppHistory(rc.ctx, q)
	if err != nil {
		return nil, err
	}
	// is-room from the conversations the engine has cached; others are
	// reported as not rooms rather than read one by one.
	rooms := map[string]bool{}
	for _, m := range ms {
		if _, s := h.eng.loaded(m.ConvID); s != nil {
			rooms[m.ConvID] = s.conv.Transient
		}
	}
	return historyJSON(ms, reversed, rooms), nil
}

// restCheckOnline is POST clients/check-online {client_ids} (at most 20):
// {"results": the online ones}, on any node.
func restCheckOnline(h *Hub, rc *restCall) (any, error) {
	ids, err := rc.clientIDs()
	if err != nil {
		return nil, err
	}
	if len(ids) > 20 {
		return nil, badRequest("at most 20 client ids")
	}
	online := []string{}
	for _, id := range dedupSorted(ids) {
		if h.online(id) {
			online = append(online, id)
		}
	}
	return map[string]any{"results": online}, nil
}

// restUnreadCount is GET clients/{id}/unread-count?conv_id=: {"count"}.
func restUnreadCount(h *Hub, rc *restCall) (any, error) {
	id := rc.param("client")
	if !validClientID(id) {
		return nil, badRequest("invalid client id")
	}
	tuples, err := h.Store().Unread(rc.ctx, id, 0, 0)
	if err != nil {
		return nil, err
	}
	convID, n := rc.query("conv_id"), 0
	for _, t := range tuples {
		if convID == "" || t.ConvID == convID {
			n += t.Unread
		}
	}
	return map[string]any{"count": n}, nil
}

// restKick is POST clients/{id}/kick {reason}: every session of the client
// ends (session closed 4115 with the reason), as Hub.Kick.
func restKick(h *Hub, rc *restCall) (any, error) {
	var b struct {
		Reason string `json:"reason"`
	}
	if err := rc.decode(&b); err != nil {
		return nil, err
	}
	if len([]rune(b.Reason)) > 20 {
		return nil, badRequest("reason: at most 20 characters")
	}
	if b.Reason == "" {
		b.Reason = "kicked by the application"
	}
	id := rc.param("client")
	if err := h.Kick(rc.ctx, id, b.Reason); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

// restClientServices is GET clients/{id}/service-conversations: the
// service conversations the client subscribes to, oldest first, as
// [{timestamp (created), subscriber, conv_id}] (limit, default 50).
func restClientServices(h *Hub, rc *restCall) (any, error) {
	id := rc.param("client")
	if !validClientID(id) {
		return nil, badRequest("invalid client id")
	}
	limit, err := rc.queryInt("limit", 50)
	if err != nil {
		return nil, err
	}
	yes := true
	convs, err := h.store.QueryConversations(rc.ctx, realtime.ConversationQuery{Member: id, System: &yes,
		Sort: "createdAt", Limit: int(min(max(limit, 1), 1000))})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(convs, func(i, j int) bool { return convs[i].CreatedAt.Before(convs[j].CreatedAt) })
	out := []map[string]any{}
	for _, c := range convs {
		out = append(out, map[string]any{"timestamp": c.CreatedAt.UnixMilli(), "subscriber": id, "conv_id": c.ID})
	}
	return out, nil
}

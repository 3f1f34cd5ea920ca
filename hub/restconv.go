package hub

import (
	"encoding/json"
	"sort"
	"strings"
	"time"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/convquery"
)

// The REST API's conversation calls: create, query, get, update, delete,
// members, mutes, moderation (silences, blacklists, roles), chat room
// presence and service subscribers.

// convKind is the collection a REST path names: conversations (1:1 and
// groups), chatrooms (tr) or service-conversations (sys); kindAny is
// all-conversations. Calls on one conversation serve it as the kind it
// is, whatever the collection named.
type convKind int

const (
	kindConversation convKind = iota
	kindChatroom
	kindService
	kindAny
)

func (k convKind) path() string {
	switch k {
	case kindChatroom:
		return "chatrooms"
	case kindService:
		return "service-conversations"
	}
	return "conversations"
}

// restConvBody is a conversation to create, as LeanCloud's fields: name,
// m (members), c (creator), unique, attr, tr, sys.
type restConvBody struct {
	Name      string          `json:"name"`
	Members   []string        `json:"m"`
	Creator   string          `json:"c"`
	Unique    bool            `json:"unique"`
	Attrs     json.RawMessage `json:"attr"`
	Transient bool            `json:"tr"`
	System    bool            `json:"sys"`
}

// create is POST /{collection}: the conversation as LeanCloud's
// _Conversation object (objectId, createdAt, name, m ...).
func (k convKind) create(h *Hub, rc *restCall) (any, error) {
	var b restConvBody
	if err := rc.decode(&b); err != nil {
		return nil, err
	}
	if len(b.Attrs) > 0 && !isJSONObject(b.Attrs) {
		return nil, badRequest("attr must be a JSON object")
	}
	c := &realtime.Conversation{Name: b.Name, Members: b.Members, Creator: b.Creator, Unique: b.Unique,
		Attrs: b.Attrs, Transient: b.Transient || k == kindChatroom, System: b.System || k == kindService}
	if c.Transient && c.System {
		return nil, badRequest("a conversation is a chat room or a service conversation, not both")
	}
	if c.Creator != "" && !validClientID(c.Creator) {
		return nil, realtime.ErrInvalidMessage.WithDetail("invalid creator %q", c.Creator)
	}
	if err := h.stopped(); err != nil {
		return nil, err
	}
	conv, _, err := h.eng.createConversation(rc.ctx, actor{client: c.Creator, api: true}, c)
	if err != nil {
		return nil, err
	}
	return convJSON(conv, false, h.now()), nil
}

// query is GET /{collection}?where=&skip=&limit=&order=: {"results": [...]}.
func (k convKind) query(h *Hub, rc *restCall) (any, error) {
	q := realtime.ConversationQuery{Sort: rc.query("order"), WithLastMessage: true}
	skip, err := rc.queryInt("skip", 0)
	if err != nil {
		return nil, err
	}
	limit, err := rc.queryInt("limit", 100)
	if err != nil {
		return nil, err
	}
	q.Skip, q.Limit = int(max(skip, 0)), int(min(max(limit, 1), 1000))
	if w := rc.query("where"); w != "" {
		if q.Where, err = convquery.Parse([]byte(w), nil); err != nil {
			return nil, err
		}
	}
	if _, err := realtime.ParseSort(q.Sort); err != nil {
		return nil, err
	}
	yes, no := true, false
	switch k {
	case kindConversation:
		q.Transient, q.System = &no, &no
	case kindChatroom:
		q.Transient = &yes
	case kindService:
		q.System = &yes
	}
	convs, err := h.store.QueryConversations(rc.ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(convs))
	for _, c := range convs {
		out = append(out, convJSON(c, false, h.now()))
	}
	return map[string]any{"results": out}, nil
}

// snap is the conversation a path names, from the engine's cache.
func (rc *restCall) snap(h *Hub) (*convSnap, error) {
	_, s, err := h.eng.snapshot(rc.ctx, rc.param("cid"))
	return s, err
}

func restGetConv(h *Hub, rc *restCall) (any, error) {
	s, err := rc.snap(h)
	if err != nil {
		return nil, err
	}
	return convJSON(s.conv, false, h.now()), nil
}

// updated is LeanCloud's answer to a change: {updatedAt, objectId}.
func updated(c *realtime.Conversation) map[string]any {
	return map[string]any{"updatedAt": isoTime(c.UpdatedAt), "objectId": c.ID}
}

// restUpdateConv is PUT /{collection}/{id}: {"name": .., "attr": {..},
// "attr.key": ..}. Attributes merge key by key (null removes one), as the
// SDK's conversation.set; m changes through /members, mu through /mutes.
func restUpdateConv(h *Hub, rc *restCall) (any, error) {
	var body map[string]json.RawMessage
	if err := rc.decode(&body); err != nil {
		return nil, err
	}
	u, err := parseConvUpdate(body)
	if err != nil {
		return nil, err
	}
	u.ID = rc.param("cid")
	if err := h.stopped(); err != nil {
		return nil, err
	}
	conv, err := h.eng.updateConversation(rc.ctx, actor{api: true}, u, "")
	if err != nil {
		return nil, err
	}
	return updated(conv), nil
}

// parseConvUpdate reads an update body. It takes untrusted bytes' result:
// every key is checked.
func parseConvUpdate(body map[string]json.RawMessage) (realtime.ConversationUpdate, error) {
	var u realtime.ConversationUpdate
	if len(body) == 0 {
		return u, badRequest("nothing to update: give name, attr or attr.<key>")
	}
	attrs := map[string]json.RawMessage{}
	for k, v := range body {
		switch {
		case k == "name":
			var name string
			if json.Unmarshal(v, &name) != nil {
				return u, badRequest("name must be a string")
			}
			u.Name = &name
		case k == "attr":
			var obj map[string]json.RawMessage
			if json.Unmarshal(v, &obj) != nil || obj == nil {
				return u, badRequest("attr must be a JSON object")
			}
			for ak, av := range obj {
				attrs[ak] = av
			}
		case strings.HasPrefix(k, "attr."):
			key := strings.TrimPrefix(k, "attr.")
			if key == "" || strings.Contains(key, ".") {
				return u, badRequest("%q: only top-level attributes (attr.<key>) can be set", k)
			}
			if !json.Valid(v) {
				return u, badRequest("%q: not JSON", k)
			}
			attrs[key] = v
		case k == "m" || k == "mu":
			return u, badRequest("%s changes through /members or /mutes", k)
		default:
			return u, badRequest("%q cannot be updated: give name, attr or attr.<key>", k)
		}
	}
	if len(attrs) > 0 {
		b, err := json.Marshal(attrs)
		if err != nil {
			return u, badRequest("attributes: %v", err)
		}
		u.Attrs = b
	}
	return u, nil
}

func restDeleteConv(h *Hub, rc *restCall) (any, error) {
	if err := h.DeleteConversation(rc.ctx, rc.param("cid")); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

// clientIDsBody is {"client_ids": [...]}.
type clientIDsBody struct {
	ClientIDs []string `json:"client_ids"`
}

func (rc *restCall) clientIDs() ([]string, error) {
	var b clientIDsBody
	if err := rc.decode(&b); err != nil {
		return nil, err
	}
	if len(b.ClientIDs) == 0 {
		return nil, badRequest("client_ids is required")
	}
	for _, id := range b.ClientIDs {
		if !validClientID(id) {
			return nil, realtime.ErrInvalidMessage.WithDetail("invalid client id %q", id)
		}
	}
	return b.ClientIDs, nil
}

// restMembers adds or removes members: the added get INVITED, the removed
// KICKED, the others MEMBERS_JOINED / MEMBERS_LEFT, as for an SDK call.
func restMembers(add bool) func(h *Hub, rc *restCall) (any, error) {
	return func(h *Hub, rc *restCall) (any, error) {
		ids, err := rc.clientIDs()
		if err != nil {
			return nil, err
		}
		return changeMembersREST(h, rc, ids, add)
	}
}

func changeMembersREST(h *Hub, rc *restCall, ids []string, add bool) (any, error) {
	if err := h.stopped(); err != nil {
		return nil, err
	}
	res, err := h.eng.changeMembers(rc.ctx, actor{api: true}, rc.param("cid"), ids, add)
	if err != nil {
		return nil, err
	}
	if len(res.refused) > 0 {
		return nil, res.refused[0].err.WithDetail("blocked: %v", res.refused[0].ids)
	}
	return updated(res.conv), nil
}

func restListMembers(h *Hub, rc *restCall) (any, error) {
	s, err := rc.snap(h)
	if err != nil {
		return nil, err
	}
	return map[string]any{"result": nonNil(s.conv.Members)}, nil
}

// restMute mutes (no pushes of the conversation) or unmutes it for
// clients: the conversation's mu list.
func restMute(mute bool) func(h *Hub, rc *restCall) (any, error) {
	return func(h *Hub, rc *restCall) (any, error) {
		ids, err := rc.clientIDs()
		if err != nil {
			return nil, err
		}
		u := realtime.ConversationUpdate{ID: rc.param("cid")}
		if mute {
			u.Mute = ids
		} else {
			u.Unmute = ids
		}
		if err := h.stopped(); err != nil {
			return nil, err
		}
		conv, err := h.eng.updateConversation(rc.ctx, actor{api: true}, u, "")
		if err != nil {
			return nil, err
		}
		return updated(conv), nil
	}
}

func restListMutes(h *Hub, rc *restCall) (any, error) {
	s, err := rc.snap(h)
	if err != nil {
		return nil, err
	}
	return map[string]any{"result": nonNil(s.conv.Muted)}, nil
}

// maxTempSilence is LeanCloud's longest temporary silence.
const maxTempSilence = 24 * time.Hour

// restTempSilence is POST {client_id, ttl} (seconds, at most a day) and
// DELETE ?client_id=.
func restTempSilence(on bool) func(h *Hub, rc *restCall) (any, error) {
	return func(h *Hub, rc *restCall) (any, error) {
		convID := rc.param("cid")
		if !on {
			id := rc.query("client_id")
			if !validClientID(id) {
				return nil, badRequest("client_id is required")
			}
			return map[string]any{}, h.Unsilence(rc.ctx, convID, []string{id})
		}
		var b struct {
			ClientID string `json:"client_id"`
			TTL      int64  `json:"ttl"`
		}
		if err := rc.decode(&b); err != nil {
			return nil, err
		}
		if !validClientID(b.ClientID) {
			return nil, badRequest("client_id is required")
		}
		if b.TTL <= 0 || b.TTL > int64(maxTempSilence/time.Second) {
			return nil, badRequest("ttl must be 1 to %d seconds", int64(maxTempSilence/time.Second))
		}
		_, err := h.Silence(rc.ctx, convID, []string{b.ClientID}, h.now().Add(time.Duration(b.TTL)*time.Second))
		return map[string]any{}, err
	}
}

func restPermSilence(on bool) func(h *Hub, rc *restCall) (any, error) {
	return func(h *Hub, rc *restCall) (any, error) {
		ids, err := rc.clientIDs()
		if err != nil {
			return nil, err
		}
		if on {
			_, err = h.Silence(rc.ctx, rc.param("cid"), ids, time.Time{})
		} else {
			err = h.Unsilence(rc.ctx, rc.param("cid"), ids)
		}
		return map[string]any{}, err
	}
}

func restBlock(on bool) func(h *Hub, rc *restCall) (any, error) {
	return func(h *Hub, rc *restCall) (any, error) {
		ids, err := rc.clientIDs()
		if err != nil {
			return nil, err
		}
		if on {
			_, err = h.Block(rc.ctx, rc.param("cid"), ids)
		} else {
			err = h.Unblock(rc.ctx, rc.param("cid"), ids)
		}
		return map[string]any{}, err
	}
}

// restIDPage answers a paged id list: ?limit= (default 10) &next=, as
// {"client_ids": [...], "next": ".."} (next only when there is more).
func restIDPage(h *Hub, rc *restCall, list func(convID, after string, limit int) ([]string, error)) (any, error) {
	s, err := rc.snap(h)
	if err != nil {
		return nil, err
	}
	limit, err := rc.queryInt("limit", 10)
	if err != nil {
		return nil, err
	}
	ids, next, err := h.page(rc.ctx, int32(min(max(limit, 0), 100)), rc.query("next"), func(after string, n int) ([]string, error) {
		return list(s.conv.ID, after, n)
	})
	if err != nil {
		return nil, err
	}
	out := map[string]any{"client_ids": nonNil(ids)}
	if next != "" {
		out["next"] = next
	}
	return out, nil
}

// restListSilenced lists the silenced members, temporary ones included
// (the store keeps one list with an end time per member).
func restListSilenced(h *Hub, rc *restCall) (any, error) {
	return restIDPage(h, rc, func(convID, after string, n int) ([]string, error) {
		return h.store.ListSilenced(rc.ctx, convID, after, n)
	})
}

func restListBlocked(h *Hub, rc *restCall) (any, error) {
	return restIDPage(h, rc, func(convID, after string, n int) ([]string, error) {
		return h.store.ListBlocked(rc.ctx, convID, after, n)
	})
}

// restSetRole is POST member-infos {clientId, role} and PUT
// member-infos/{info-id} {role}: members get MEMBER_INFO_UPDATED.
func restSetRole(h *Hub, rc *restCall) (any, error) {
	var b struct {
		ClientID string `json:"clientId"`
		Role     string `json:"role"`
	}
	if err := rc.decode(&b); err != nil {
		return nil, err
	}
	convID := rc.param("cid")
	if info := rc.param("info"); info != "" {
		s, err := rc.snap(h)
		if err != nil {
			return nil, err
		}
		id := memberOfInfo(s, info)
		if id == "" || (b.ClientID != "" && b.ClientID != id) {
			return nil, realtime.ErrConvMembershipNeeded.WithDetail("no member info %s", info)
		}
		b.ClientID = id
	}
	if !validClientID(b.ClientID) {
		return nil, badRequest("clientId is required")
	}
	if b.Role == "" {
		return nil, badRequest("role is required")
	}
	if err := h.SetRole(rc.ctx, convID, "", b.ClientID, realtime.MemberRole(b.Role)); err != nil {
		return nil, err
	}
	return map[string]any{"updatedAt": isoTime(h.now()), "objectId": memberInfoID(convID, b.ClientID)}, nil
}

// restClearRole is DELETE member-infos/{info-id}: the member is a Member
// again.
func restClearRole(h *Hub, rc *restCall) (any, error) {
	s, err := rc.snap(h)
	if err != nil {
		return nil, err
	}
	id := memberOfInfo(s, rc.param("info"))
	if id == "" {
		return nil, realtime.ErrConvMembershipNeeded.WithDetail("no member info %s", rc.param("info"))
	}
	return map[string]any{}, h.SetRole(rc.ctx, s.conv.ID, "", id, realtime.RoleMember)
}

// memberOfInfo finds the member whose role record id is info.
func memberOfInfo(s *convSnap, info string) string {
	for _, m := range s.conv.Members {
		if memberInfoID(s.conv.ID, m) == info {
			return m
		}
	}
	return ""
}

// restListRoles is GET member-infos?skip=&limit=&role=: the members with
// a role other than Member (the owner first), as {"results": [...]}.
func restListRoles(h *Hub, rc *restCall) (any, error) {
	s, err := rc.snap(h)
	if err != nil {
		return nil, err
	}
	skip, err := rc.queryInt("skip", 0)
	if err != nil {
		return nil, err
	}
	limit, err := rc.queryInt("limit", 100)
	if err != nil {
		return nil, err
	}
	role := rc.query("role")
	type info struct{ client, role string }
	var infos []info
	if c := s.conv; c.Creator != "" && s.isMember(c.Creator) {
		infos = append(infos, info{c.Creator, string(realtime.RoleOwner)})
	}
	var others []info
	for id, r := range s.conv.Roles {
		if id != s.conv.Creator && r != realtime.RoleMember && r != "" {
			others = append(others, info{id, string(r)})
		}
	}
	sort.Slice(others, func(i, j int) bool { return others[i].client < others[j].client })
	infos = append(infos, others...)
	results := []map[string]any{}
	for _, in := range infos {
		if role != "" && in.role != role {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		if int64(len(results)) >= max(limit, 1) {
			break
		}
		results = append(results, map[string]any{"objectId": memberInfoID(s.conv.ID, in.client),
			"cid": s.conv.ID, "clientId": in.client, "role": in.role})
	}
	return map[string]any{"results": results}, nil
}

// restRoomMembers lists a chat room's joiners online on this node (a
// chat room's members are presence, kept by the node holding the
// session), at most 100.
func restRoomMembers(h *Hub, rc *restCall) (any, error) {
	s, err := rc.snap(h)
	if err != nil {
		return nil, err
	}
	ids := h.rooms.list(s.conv.ID)
	sort.Strings(ids)
	return map[string]any{"result": ids[:min(len(ids), 100)]}, nil
}

func restRoomCount(h *Hub, rc *restCall) (any, error) {
	s, err := rc.snap(h)
	if err != nil {
		return nil, err
	}
	return map[string]any{"result": h.rooms.count(s.conv.ID)}, nil
}

// restSubscribe is POST subscribers {client_id}.
func restSubscribe(h *Hub, rc *restCall) (any, error) {
	var b struct {
		ClientID string `json:"client_id"`
	}
	if err := rc.decode(&b); err != nil {
		return nil, err
	}
	if !validClientID(b.ClientID) {
		return nil, badRequest("client_id is required")
	}
	if _, err := changeMembersREST(h, rc, []string{b.ClientID}, true); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

func restUnsubscribe(h *Hub, rc *restCall) (any, error) {
	id := rc.param("client")
	if !validClientID(id) {
		return nil, badRequest("invalid client id")
	}
	if _, err := changeMembersREST(h, rc, []string{id}, false); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

// restListSubscribers is GET subscribers?limit=&client_id=: subscribers
// after client_id in id order, at most limit (default and cap 50), as
// [{timestamp, subscriber, conv_id}].
func restListSubscribers(h *Hub, rc *restCall) (any, error) {
	s, err := rc.snap(h)
	if err != nil {
		return nil, err
	}
	limit, err := rc.queryInt("limit", 50)
	if err != nil {
		return nil, err
	}
	limit = min(max(limit, 1), 50)
	members, err := h.members(rc.ctx, s.conv.ID)
	if err != nil {
		return nil, err
	}
	after := rc.query("client_id")
	out := []map[string]any{}
	for _, m := range members {
		if after != "" && m.ClientID <= after {
			continue
		}
		if int64(len(out)) >= limit {
			break
		}
		out = append(out, map[string]any{"timestamp": m.JoinedAt.UnixMilli(), "subscriber": m.ClientID, "conv_id": s.conv.ID})
	}
	return out, nil
}

func restCountSubscribers(h *Hub, rc *restCall) (any, error) {
	s, err := rc.snap(h)
	if err != nil {
		return nil, err
	}
	return map[string]any{"count": len(s.conv.Members)}, nil
}

func isJSONObject(b json.RawMessage) bool {
	var obj map[string]json.RawMessage
	return json.Unmarshal(b, &obj) == nil && obj != nil
}

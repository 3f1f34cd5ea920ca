package hub

import realtime "github.com/leanhub/realtime"

// ConversationVisibility decides which conversations a client's queries
// find and which it may join by itself.
type ConversationVisibility int

const (
	// VisibleToAll is LeanCloud's behaviour (its default _Conversation
	// ACL): a query without conditions finds the conversations the client
	// is a member of, and a query with any condition finds every
	// conversation matching it, so a client can look a group up by id and
	// join() it (the SDK's usual "join a group by id"). A conversation id
	// is then a credential: whoever knows it may join (a ConversationAdd
	// hook sees self-joins and may refuse them).
	VisibleToAll ConversationVisibility = iota
	// VisibleToMembers makes ordinary conversations private: queries find
	// only conversations the client is a member of (plus chat rooms and
	// system conversations, which anyone may join or subscribe to), and a
	// client joins a group only when a member adds it (self-joins are
	// refused with 4308).
	VisibleToMembers
)

// restrictQuery applies the visibility rule to a client's query and
// returns the check of each result.
//
// A query without conditions finds the client's own conversations
// (LeanCloud's default condition, which any condition replaces). With
// VisibleToAll any condition finds every conversation matching it. With
// VisibleToMembers a client sees the conversations it is a member of, and
// every chat room and system conversation: a query whose where names no
// ids, members, chat rooms (tr true) or system conversations (sys true)
// among the conditions it requires is restricted to the client's own
// conversations in the store, so its pages are full; the results of every
// query are then checked, so asking for another client's conversations
// shows only shared ones.
//
// Lookups by objectId (the SDK's getConversations asks for limit 999,
// temporary conversations ask none) return every id asked for, up to 1000.
func (h *Hub) restrictQuery(q *realtime.ConversationQuery, clientID string, askedLimit int) func(*realtime.Conversation) bool {
	ids, public, members := len(q.IDs), false, false
	for _, f := range required(q.Where) {
		switch {
		case f.Field == realtime.FieldObjectID && f.Op == realtime.FilterEq:
			ids++
		case f.Field == realtime.FieldObjectID && f.Op == realtime.FilterIn:
			ids += len(f.Values)
		case (f.Field == realtime.FieldTransient || f.Field == realtime.FieldSystem) && f.Op == realtime.FilterEq && f.Value == true:
			public = true
		case f.Field == realtime.FieldMembers && (f.Op == realtime.FilterEq || f.Op == realtime.FilterAll || f.Op == realtime.FilterIn):
			members = true
		}
	}
	if ids > 0 {
		q.Limit = min(max(askedLimit, ids), 1000)
	}
	own := q.Member == "" && len(q.AllMembers) == 0
	if h.cfg.ConversationVisibility == VisibleToAll {
		if own && len(q.IDs) == 0 && q.Where == nil {
			q.Member = clientID
		}
		return func(*realtime.Conversation) bool { return true }
	}
	if own && ids == 0 && !public && !members {
		q.Member = clientID
	}
	return func(c *realtime.Conversation) bool { return c.Transient || c.System || c.HasMember(clientID) }
}

// mayJoin reports whether clientID may add itself to the conversation.
func (h *Hub) mayJoin(s *convSnap, clientID string) bool {
	return h.cfg.ConversationVisibility == VisibleToAll || s.conv.Transient || s.conv.System || s.isMember(clientID)
}

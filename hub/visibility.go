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

// restrictQuery applies the visibility rule to a client's query: without
// conditions a query finds the client's own conversations (LeanCloud's
// default condition, which any condition replaces).
func (h *Hub) restrictQuery(q *realtime.ConversationQuery, clientID string, hasConditions bool) {
	if !hasConditions && q.Member == "" && len(q.AllMembers) == 0 {
		q.Member = clientID
	}
}

// visibleTo reports whether clientID may see c in query results.
func (h *Hub) visibleTo(c *realtime.Conversation, clientID string) bool {
	if h.cfg.ConversationVisibility == VisibleToAll || c.Transient || c.System {
		return true
	}
	return c.HasMember(clientID)
}

// mayJoin reports whether clientID may add itself to the conversation.
func (h *Hub) mayJoin(s *convSnap, clientID string) bool {
	return h.cfg.ConversationVisibility == VisibleToAll || s.conv.Transient || s.conv.System || s.isMember(clientID)
}

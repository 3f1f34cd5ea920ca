package store

import "github.com/leanhub/realtime"

// ConversationsSQL returns the statement QueryConversations runs for q, for
// the query plan tests.
func ConversationsSQL(s *SQL, q realtime.ConversationQuery) (string, []any, error) {
	query, args, _, err := s.conversationsSQL(q)
	return query, args, err
}

// IsStatementTimeout exposes the recognition of statement_timeout errors.
var IsStatementTimeout = isStatementTimeout

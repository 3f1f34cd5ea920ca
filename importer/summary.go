package importer

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Reason says why a record was skipped (or, for ReasonBadMember and
// ReasonTimestampMoved, what was changed in a record that was imported).
type Reason string

const (
	ReasonMalformed         Reason = "malformed JSON or not a JSON object"
	ReasonBadField          Reason = "a field has the wrong type"
	ReasonBadConversationID Reason = "conversation id is not a 24-hex objectId"
	ReasonTemporary         Reason = "temporary conversation (_tmp:): LeanCloud does not export them"
	ReasonDuplicateConv     Reason = "conversation listed twice"
	ReasonBadMember         Reason = "client id is not valid (dropped from the conversation's members, mutes or creator)"
	ReasonConvRefused       Reason = "conversation refused by the store"
	ReasonBadMessageID      Reason = "message id of the wrong shape"
	ReasonBadTimestamp      Reason = "message without a valid timestamp"
	ReasonFutureTimestamp   Reason = "message timestamp more than a day in the future"
	ReasonBadSender         Reason = "sender is not a valid client id"
	ReasonBadBody           Reason = "message body is not UTF-8 text (or bin but not base64)"
	ReasonDuplicateMessage  Reason = "duplicate message id"
	ReasonUnknownConv       Reason = "message of a conversation that is not imported"
	ReasonMessageRefused    Reason = "message refused by the store"
	ReasonFetchFailed       Reason = "history could not be fetched from LeanCloud"
	ReasonTimestampMoved    Reason = "timestamp moved by +1 ms or more to stay unique in its conversation (imported)"
)

// Count is what happened to one kind of record.
type Count struct {
	Imported int // written by this run
	Existing int // stored already (by an earlier run): left as they are
	Skipped  int // not imported; see Summary.Reasons
}

// Issue is one reported record: where it was read, what it is, why it was
// skipped or changed.
type Issue struct {
	Kind   string // "conversation", "message", "member" (of a conversation), "history" (of a conversation)
	Where  string // source:line, or the conversation id for fetched history
	Reason Reason
	Detail string
}

// Summary is the outcome of Run.
type Summary struct {
	Conversations Count
	Messages      Count
	// Reasons counts skipped records (and ReasonBadMember,
	// ReasonTimestampMoved changes) by reason.
	Reasons map[Reason]int
	// Issues are the first reported records, at most 20 per reason.
	Issues []Issue
	// UnknownFields counts history item fields the importer does not know
	// (ignored; the messages are imported).
	UnknownFields map[string]int
	// Attributes counts the custom attributes kept, by name (every
	// _Conversation field that is not LeanCloud's own).
	Attributes map[string]int
	// CheckpointedConversations were skipped because the checkpoint says
	// they were imported completely (Config.Refresh looks again).
	CheckpointedConversations int
	// Requests and Retries count LeanCloud REST calls.
	Requests, Retries int64
	Elapsed           time.Duration
	DryRun            bool

	mu        sync.Mutex
	perReason map[Reason]int
}

const issuesPerReason = 20

func newSummary() *Summary {
	return &Summary{Reasons: map[Reason]int{}, UnknownFields: map[string]int{}, Attributes: map[string]int{},
		perReason: map[Reason]int{}}
}

// report records an issue. Reasons that change rather than skip do not
// count as skipped.
func (s *Summary) report(kind, where string, reason Reason, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Reasons[reason]++
	switch {
	case reason == ReasonBadMember || reason == ReasonTimestampMoved:
	case kind == "conversation":
		s.Conversations.Skipped++
	case kind == "message":
		s.Messages.Skipped++
	}
	if s.perReason[reason] < issuesPerReason {
		s.perReason[reason]++
		s.Issues = append(s.Issues, Issue{Kind: kind, Where: where, Reason: reason, Detail: detail})
	}
}

func (s *Summary) add(f func(s *Summary)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *Summary) snapshot() (convs, msgs Count) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Conversations, s.Messages
}

// WriteTo writes the summary for people: counts, then the reasons with a
// few examples each.
func (s *Summary) WriteTo(w io.Writer) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	verb := "imported"
	if s.DryRun {
		verb = "would import"
	}
	fmt.Fprintf(&b, "conversations: %d %s, %d already there, %d skipped\n", s.Conversations.Imported, verb,
		s.Conversations.Existing, s.Conversations.Skipped)
	fmt.Fprintf(&b, "messages:      %d %s, %d already there, %d skipped\n", s.Messages.Imported, verb,
		s.Messages.Existing, s.Messages.Skipped)
	if s.CheckpointedConversations > 0 {
		fmt.Fprintf(&b, "checkpoint:    %d conversations imported completely before, not looked at again (-refresh looks)\n",
			s.CheckpointedConversations)
	}
	if s.Requests > 0 {
		fmt.Fprintf(&b, "leancloud:     %d requests, %d retried\n", s.Requests, s.Retries)
	}
	fmt.Fprintf(&b, "time:          %v", s.Elapsed.Round(time.Millisecond))
	if secs := s.Elapsed.Seconds(); secs > 0 && s.Messages.Imported > 0 {
		fmt.Fprintf(&b, " (%.0f messages/s)", float64(s.Messages.Imported)/secs)
	}
	b.WriteString("\n")
	if len(s.Reasons) > 0 {
		b.WriteString("reported:\n")
		reasons := slices.SortedFunc(maps.Keys(s.Reasons), func(a, b Reason) int {
			return cmp.Or(cmp.Compare(s.Reasons[b], s.Reasons[a]), strings.Compare(string(a), string(b)))
		})
		for _, r := range reasons {
			fmt.Fprintf(&b, "  %7d  %s\n", s.Reasons[r], r)
			shown := 0
			for _, is := range s.Issues {
				if is.Reason == r && shown < 3 {
					shown++
					fmt.Fprintf(&b, "           e.g. %s %s: %s\n", is.Kind, is.Where, is.Detail)
				}
			}
		}
	}
	if len(s.UnknownFields) > 0 {
		b.WriteString("unknown history fields (ignored):")
		for _, k := range slices.Sorted(maps.Keys(s.UnknownFields)) {
			fmt.Fprintf(&b, " %s (%d)", k, s.UnknownFields[k])
		}
		b.WriteString("\n")
	}
	if len(s.Attributes) > 0 {
		b.WriteString("custom conversation attributes kept:")
		for _, k := range slices.Sorted(maps.Keys(s.Attributes)) {
			fmt.Fprintf(&b, " %s (%d)", k, s.Attributes[k])
		}
		b.WriteString("\n")
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

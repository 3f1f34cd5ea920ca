package importer

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/leanhub/realtime"
)

// History item fields (LeanCloud REST API v2, GET .../messages) that are
// read, and the ones known but not kept: from-ip, ack-at and read-at have
// no place in the store (receipts are rebuilt from the members' cursors),
// is-conv, is-room and conv-type describe the conversation, to repeats its
// id.
var itemFields = map[string]bool{
	"msg-id": true, "timestamp": true, "conv-id": true, "to": true, "from": true, "data": true, "bin": true,
	"mention-all": true, "mention-pids": true, "patch-timestamp": true,
	"from-ip": true, "ack-at": true, "read-at": true, "is-conv": true, "is-room": true, "conv-type": true,
}

// historyItem is a parsed history item: the message and the conversation
// ids it names.
type historyItem struct {
	msg    realtime.Message
	convID string // conv-id as given
	to     string
	where  string
}

// parseItem turns one history item into a message. unknown lists the
// fields it does not know (ignored). The conversation is resolved later
// (resolveConv).
func parseItem(o map[string]json.RawMessage) (it historyItem, unknown []string, reason Reason, detail string) {
	for k := range o {
		if !itemFields[k] {
			unknown = append(unknown, k)
		}
	}
	id, _, err := getString(o, "msg-id")
	if err != nil {
		return it, unknown, ReasonBadField, err.Error()
	}
	if !validMessageID(id) {
		return it, unknown, ReasonBadMessageID, fmt.Sprintf("msg-id %q", id)
	}
	m := &it.msg
	m.ID = id
	ts, ok, err := getInt(o, "timestamp")
	switch {
	case err != nil:
		return it, unknown, ReasonBadTimestamp, err.Error()
	case !ok || ts <= 0:
		return it, unknown, ReasonBadTimestamp, fmt.Sprintf("message %s has no timestamp", id)
	}
	m.Timestamp = ts
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var e error
	it.convID, _, e = getString(o, "conv-id")
	keep(e)
	it.to, _, e = getString(o, "to")
	keep(e)
	m.From, _, e = getString(o, "from")
	keep(e)
	data, _, e := getString(o, "data")
	keep(e)
	bin, e := getBool(o, "bin")
	keep(e)
	m.MentionAll, e = getBool(o, "mention-all")
	keep(e)
	m.MentionPids, e = getStrings(o, "mention-pids")
	keep(e)
	patchTS, _, e := getInt(o, "patch-timestamp")
	keep(e)
	if len(errs) > 0 {
		return it, unknown, ReasonBadField, fmt.Sprintf("message %s: %v", id, errs[0])
	}
	if !validClientID(m.From) {
		return it, unknown, ReasonBadSender, fmt.Sprintf("message %s: from %q", id, m.From)
	}
	if patchTS > 0 {
		m.PatchTimestamp = patchTS
	}
	if bin {
		b, err := decodeBase64(data)
		if err != nil {
			return it, unknown, ReasonBadBody, fmt.Sprintf("message %s: bin is true but data is not base64", id)
		}
		m.Binary = b
	} else {
		if !utf8.ValidString(data) || strings.IndexByte(data, 0) >= 0 {
			return it, unknown, ReasonBadBody, fmt.Sprintf("message %s: data is not UTF-8 text without NUL", id)
		}
		m.Data = data
		m.Recalled = lcType(data) == -127
	}
	pids := m.MentionPids[:0]
	for _, p := range m.MentionPids {
		if validClientID(p) {
			pids = append(pids, p)
		}
	}
	m.MentionPids = pids
	if len(m.MentionPids) == 0 {
		m.MentionPids = nil
	}
	return it, unknown, "", ""
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("not base64")
}

// validMessageID: what the importer takes for a LeanCloud message id: 8
// to 64 characters of the base64 and base64url alphabets (LeanCloud's
// are 22 base64url characters, like "qNkRkFWOeSqP65S9fDyHJw").
func validMessageID(id string) bool {
	if len(id) < 8 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

// lcType is the "_lctype" of a typed-message body, 0 for others.
func lcType(data string) int {
	if len(data) < 2 || data[0] != '{' {
		return 0
	}
	var v struct {
		T *json.Number `json:"_lctype"`
	}
	if json.Unmarshal([]byte(data), &v) != nil || v.T == nil {
		return 0
	}
	n, err := v.T.Int64()
	if err != nil {
		return 0
	}
	return int(n)
}

// resolveConv picks the conversation of an item: the one its page was
// fetched for (fetchedFor), else conv-id or to when one is an objectId,
// else the objectId conv-id starts with when that conversation is known
// (LeanCloud's examples show conv-id as 32 characters, to as the 24-digit
// id).
func resolveConv(it *historyItem, fetchedFor string, known func(string) bool) (string, Reason, string) {
	if fetchedFor != "" {
		return fetchedFor, "", ""
	}
	for _, id := range []string{it.convID, it.to} {
		if validConvID(id) {
			return id, "", ""
		}
	}
	if strings.HasPrefix(it.convID, "_tmp:") || strings.HasPrefix(it.to, "_tmp:") {
		return "", ReasonTemporary, fmt.Sprintf("message %s of %s", it.msg.ID, it.convID)
	}
	if len(it.convID) > 24 && validConvID(it.convID[:24]) && known(it.convID[:24]) {
		return it.convID[:24], "", ""
	}
	if it.convID == "" && it.to == "" {
		return "", ReasonBadConversationID, fmt.Sprintf("message %s has no conv-id", it.msg.ID)
	}
	return "", ReasonBadConversationID, fmt.Sprintf("message %s: conv-id %q", it.msg.ID, it.convID)
}

package importer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
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

// itemJSON is a history item's fields as decoded. A null field is as if
// absent.
type itemJSON struct {
	MsgID       string      `json:"msg-id"`
	Timestamp   json.Number `json:"timestamp"`
	ConvID      string      `json:"conv-id"`
	To          string      `json:"to"`
	From        string      `json:"from"`
	Data        string      `json:"data"`
	Bin         bool        `json:"bin"`
	MentionAll  bool        `json:"mention-all"`
	MentionPids []string    `json:"mention-pids"`
	PatchTS     json.Number `json:"patch-timestamp"`
	// Known, not kept.
	FromIP   json.RawMessage `json:"from-ip"`
	AckAt    json.RawMessage `json:"ack-at"`
	ReadAt   json.RawMessage `json:"read-at"`
	IsConv   json.RawMessage `json:"is-conv"`
	IsRoom   json.RawMessage `json:"is-room"`
	ConvType json.RawMessage `json:"conv-type"`
}

// decodeItem decodes a history item: straight into itemJSON when it has
// only known fields of the right types (the common case, and the fast
// one), else field by field, to name the unknown fields and the first
// field of the wrong type.
func decodeItem(raw []byte) (v itemJSON, unknown []string, reason Reason, detail string) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if dec.Decode(&v) == nil && !dec.More() {
		return v, nil, "", ""
	}
	v = itemJSON{}
	var o map[string]json.RawMessage
	if err := json.Unmarshal(raw, &o); err != nil || o == nil {
		return v, nil, ReasonMalformed, describeJSONError(raw, err)
	}
	for k := range o {
		if !itemFields[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var e error
	v.MsgID, _, e = getString(o, "msg-id")
	keep(e)
	if _, ok, e := getInt(o, "timestamp"); e != nil {
		return v, unknown, ReasonBadTimestamp, e.Error()
	} else if ok {
		v.Timestamp = json.Number(bytes.Trim(o["timestamp"], " \t\r\n\""))
	}
	v.ConvID, _, e = getString(o, "conv-id")
	keep(e)
	v.To, _, e = getString(o, "to")
	keep(e)
	v.From, _, e = getString(o, "from")
	keep(e)
	v.Data, _, e = getString(o, "data")
	keep(e)
	v.Bin, e = getBool(o, "bin")
	keep(e)
	v.MentionAll, e = getBool(o, "mention-all")
	keep(e)
	v.MentionPids, e = getStrings(o, "mention-pids")
	keep(e)
	if _, ok, e := getInt(o, "patch-timestamp"); e != nil {
		keep(e)
	} else if ok {
		v.PatchTS = json.Number(bytes.Trim(o["patch-timestamp"], " \t\r\n\""))
	}
	if len(errs) > 0 {
		return v, unknown, ReasonBadField, errs[0].Error()
	}
	return v, unknown, "", ""
}

// parseItem turns one history item into a message. unknown lists the
// fields it does not know (ignored). The conversation is resolved later
// (resolveConv).
func parseItem(raw []byte) (it historyItem, unknown []string, reason Reason, detail string) {
	v, unknown, reason, detail := decodeItem(raw)
	if reason != "" {
		if v.MsgID != "" && reason == ReasonBadField {
			detail = fmt.Sprintf("message %s: %s", v.MsgID, detail)
		}
		return it, unknown, reason, detail
	}
	if !validMessageID(v.MsgID) {
		return it, unknown, ReasonBadMessageID, fmt.Sprintf("msg-id %q", v.MsgID)
	}
	m := &it.msg
	m.ID = v.MsgID
	ts, err := numberInt(v.Timestamp)
	if err != nil || ts <= 0 {
		return it, unknown, ReasonBadTimestamp, fmt.Sprintf("message %s has no valid timestamp (%q)", m.ID, v.Timestamp)
	}
	m.Timestamp = ts
	it.convID, it.to, m.From = v.ConvID, v.To, v.From
	if !validClientID(m.From) {
		return it, unknown, ReasonBadSender, fmt.Sprintf("message %s: from %q", m.ID, m.From)
	}
	if patchTS, err := numberInt(v.PatchTS); err == nil && patchTS > 0 {
		m.PatchTimestamp = patchTS
	}
	if v.Bin {
		b, err := decodeBase64(v.Data)
		if err != nil {
			return it, unknown, ReasonBadBody, fmt.Sprintf("message %s: bin is true but data is not base64", m.ID)
		}
		m.Binary = b
	} else {
		if !utf8.ValidString(v.Data) || strings.IndexByte(v.Data, 0) >= 0 {
			return it, unknown, ReasonBadBody, fmt.Sprintf("message %s: data is not UTF-8 text without NUL", m.ID)
		}
		m.Data = v.Data
		m.Recalled = lcType(v.Data) == -127
	}
	m.MentionAll = v.MentionAll
	for _, p := range v.MentionPids {
		if validClientID(p) {
			m.MentionPids = append(m.MentionPids, p)
		}
	}
	return it, unknown, "", ""
}

// numberInt is the integer value of a JSON number ("" is 0), which may be
// written as a float with no fraction (1.6e12).
func numberInt(n json.Number) (int64, error) {
	if n == "" {
		return 0, nil
	}
	if v, err := n.Int64(); err == nil {
		return v, nil
	}
	f, err := n.Float64()
	if err != nil || f != float64(int64(f)) {
		return 0, fmt.Errorf("not an integer: %s", n)
	}
	return int64(f), nil
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

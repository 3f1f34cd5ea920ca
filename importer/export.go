package importer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/leanhub/realtime"
)

// _Conversation fields that are not custom attributes. The ones not read
// are LeanCloud's bookkeeping, rebuilt from the imported messages (lm,
// msg*) or not kept (ACL, uniqueId: unique conversations are found by
// member set).
var conversationFields = map[string]bool{
	"objectId": true, "name": true, "m": true, "c": true, "mu": true, "tr": true, "sys": true,
	"unique": true, "createdAt": true, "updatedAt": true,
	"uniqueId": true, "lm": true, "ACL": true, "msg": true, "msg_from": true, "msg_mid": true,
	"msg_timestamp": true, "msg_type": true, "bin": true, "patch_timestamp": true,
	"temp": true, "tempConv": true, "ttl": true, "temp_ttl": true, "expiredAt": true,
}

// parseConversation turns one _Conversation row into a Conversation.
// Every field it does not know is a custom attribute, as in LeanCloud,
// where custom attributes are columns of _Conversation (attr, the old
// SDKs' nested attributes, included). Members, mutes and creators that are
// not valid client ids are dropped and returned in dropped.
func parseConversation(o map[string]json.RawMessage) (c realtime.Conversation, dropped []string, reason Reason, detail string) {
	id, ok, err := getString(o, "objectId")
	switch {
	case err != nil:
		return c, nil, ReasonBadField, err.Error()
	case !ok || id == "":
		return c, nil, ReasonBadConversationID, "no objectId"
	case strings.HasPrefix(id, "_tmp:"):
		return c, nil, ReasonTemporary, id
	case !validConvID(id):
		return c, nil, ReasonBadConversationID, fmt.Sprintf("objectId %q is not 24 lowercase hex digits", id)
	}
	c.ID = id
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var e error
	c.Name, _, e = getString(o, "name")
	keep(e)
	c.Creator, _, e = getString(o, "c")
	keep(e)
	members, e := getStrings(o, "m")
	keep(e)
	muted, e := getStrings(o, "mu")
	keep(e)
	c.Transient, e = getBool(o, "tr")
	keep(e)
	c.System, e = getBool(o, "sys")
	keep(e)
	c.Unique, e = getBool(o, "unique")
	keep(e)
	c.CreatedAt, e = getTime(o, "createdAt")
	keep(e)
	c.UpdatedAt, e = getTime(o, "updatedAt")
	keep(e)
	if len(errs) > 0 {
		return c, nil, ReasonBadField, errs[0].Error()
	}
	if !utf8.ValidString(c.Name) || strings.IndexByte(c.Name, 0) >= 0 {
		return c, nil, ReasonBadField, `field "name" is not UTF-8 text without NUL`
	}
	if c.Creator != "" && !validClientID(c.Creator) {
		dropped = append(dropped, c.Creator)
		c.Creator = ""
	}
	for _, m := range members {
		if validClientID(m) {
			c.Members = append(c.Members, m)
		} else {
			dropped = append(dropped, m)
		}
	}
	for _, m := range muted {
		if validClientID(m) {
			c.Muted = append(c.Muted, m)
		} else {
			dropped = append(dropped, m)
		}
	}
	if c.Transient {
		c.Members = nil
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	attrs := map[string]json.RawMessage{}
	for k, v := range o {
		if !conversationFields[k] {
			attrs[k] = v
		}
	}
	if len(attrs) > 0 {
		b, err := json.Marshal(attrs)
		if err != nil || !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
			return c, nil, ReasonBadField, "custom attributes are not UTF-8 JSON"
		}
		c.Attrs = b
	}
	return c, dropped, "", ""
}

// getTime reads a LeanCloud time: an ISO 8601 string (createdAt,
// updatedAt) or {"__type": "Date", "iso": "..."}.
func getTime(o map[string]json.RawMessage, key string) (time.Time, error) {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return time.Time{}, nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		var d struct {
			Type string `json:"__type"`
			ISO  string `json:"iso"`
		}
		if json.Unmarshal(raw, &d) != nil || d.Type != "Date" {
			return time.Time{}, fmt.Errorf("field %q is not a date", key)
		}
		s = d.ISO
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("field %q is not an ISO 8601 date: %q", key, s)
	}
	return t, nil
}

// validConvID: 24 lowercase hex digits (a LeanCloud objectId), what the
// store accepts as a conversation id.
func validConvID(id string) bool {
	if len(id) != 24 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// validClientID: 1..64 bytes of UTF-8 without control characters, the
// store's rule.
func validClientID(id string) bool {
	if id == "" || len(id) > 64 || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

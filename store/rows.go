package store

import (
	"encoding/json"

	"github.com/uptrace/bun"

	"github.com/leanhub/realtime"
)

// convRow is a conversations row. Timestamps are Unix milliseconds.
type convRow struct {
	bun.BaseModel `bun:"table:conversations"`

	ID            string `bun:"id,pk"`
	Name          string `bun:"name"`
	Creator       string `bun:"creator"`
	Attrs         string `bun:"attrs"`
	Transient     bool   `bun:"is_transient"`
	System        bool   `bun:"is_system"`
	Unique        bool   `bun:"is_unique"`
	UniqueKey     string `bun:"unique_key,nullzero"`
	Temporary     bool   `bun:"is_temporary"`
	ExpiresAt     int64  `bun:"expires_at"`
	Muted         string `bun:"muted"`
	CreatedAt     int64  `bun:"created_at"`
	UpdatedAt     int64  `bun:"updated_at"`
	MemberCount   int    `bun:"member_count"`
	Seq           int64  `bun:"seq"`
	LastTS        int64  `bun:"last_ts"`
	LastMID       string `bun:"last_mid"`
	MentionAllSeq int64  `bun:"mention_all_seq"`
}

const convCols = `c.id, c.name, c.creator, c.attrs, c.is_transient, c.is_system, c.is_unique, c.unique_key,
	c.is_temporary, c.expires_at, c.muted, c.created_at, c.updated_at, c.member_count, c.seq, c.last_ts,
	c.last_mid, c.mention_all_seq`

func (r *convRow) expired(nowMs int64) bool {
	return r.Temporary && r.ExpiresAt > 0 && r.ExpiresAt <= nowMs
}

func (r *convRow) toConv(members []string) *realtime.Conversation {
	c := &realtime.Conversation{
		ID:        r.ID,
		Name:      r.Name,
		Creator:   r.Creator,
		Transient: r.Transient,
		System:    r.System,
		Unique:    r.Unique,
		Temporary: r.Temporary,
		ExpiresAt: msTime(r.ExpiresAt),
		CreatedAt: msTime(r.CreatedAt),
		UpdatedAt: msTime(r.UpdatedAt),
		Seq:       r.Seq,
	}
	if r.Attrs != "" && r.Attrs != "{}" {
		c.Attrs = json.RawMessage(r.Attrs)
	}
	if r.Muted != "" && r.Muted != "[]" {
		_ = json.Unmarshal([]byte(r.Muted), &c.Muted)
	}
	if !r.Transient {
		c.Members = members
		if c.Members == nil {
			c.Members = []string{}
		}
	}
	return c
}

// memberRow is a members row.
type memberRow struct {
	bun.BaseModel `bun:"table:members"`

	ConvID      string `bun:"conv_id,pk"`
	ClientID    string `bun:"client_id,pk"`
	JoinedAt    int64  `bun:"joined_at"`
	DeliveredTS int64  `bun:"delivered_ts"`
	ReadTS      int64  `bun:"read_ts"`
	ReadSeq     int64  `bun:"read_seq"`
	ReadMID     string `bun:"read_mid"`
	MentionSeq  int64  `bun:"mention_seq"`
	Role        string `bun:"role"`
	ConvSeq     int64  `bun:"conv_seq"`
}

func (r *memberRow) toMember() realtime.Member {
	m := realtime.Member{
		ConvID:        r.ConvID,
		ClientID:      r.ClientID,
		DeliveredAt:   r.DeliveredTS,
		ReadAt:        r.ReadTS,
		ReadMessageID: r.ReadMID,
		JoinedAt:      msTime(r.JoinedAt),
		Role:          realtime.RoleMember,
	}
	if r.Role != "" {
		m.Role = realtime.MemberRole(r.Role)
	}
	return m
}

// msgRow is a messages row.
type msgRow struct {
	bun.BaseModel `bun:"table:messages"`

	ID          string `bun:"id,pk"`
	ConvID      string `bun:"conv_id"`
	Seq         int64  `bun:"seq"`
	TS          int64  `bun:"ts"`
	From        string `bun:"from_id"`
	ClientMsgID string `bun:"client_msg_id,nullzero"`
	Data        string `bun:"data"`
	Binary      []byte `bun:"bin,nullzero"`
	LCType      int    `bun:"lctype"`
	MentionAll  bool   `bun:"mention_all"`
	MentionPids string `bun:"mention_pids"`
	Receipt     bool   `bun:"receipt"`
	PatchTS     int64  `bun:"patch_ts"`
	Recalled    bool   `bun:"recalled"`
	PatchCode   int    `bun:"patch_code"`
	PatchReason string `bun:"patch_reason"`
	ToIDs       string `bun:"to_ids"`
}

const msgCols = `m.id, m.conv_id, m.seq, m.ts, m.from_id, m.client_msg_id, m.data, m.bin, m.lctype, m.mention_all,
	m.mention_pids, m.receipt, m.patch_ts, m.recalled, m.patch_code, m.patch_reason, m.to_ids`

func (r *msgRow) toMessage() *realtime.Message {
	m := &realtime.Message{
		ID:             r.ID,
		ConvID:         r.ConvID,
		From:           r.From,
		Data:           r.Data,
		Binary:         r.Binary,
		Timestamp:      r.TS,
		Seq:            r.Seq,
		ClientMsgID:    r.ClientMsgID,
		MentionAll:     r.MentionAll,
		Receipt:        r.Receipt,
		PatchTimestamp: r.PatchTS,
		Recalled:       r.Recalled,
		PatchCode:      r.PatchCode,
		PatchReason:    r.PatchReason,
	}
	if len(m.Binary) == 0 {
		m.Binary = nil
	}
	m.MentionPids = decodePids(r.MentionPids)
	if r.ToIDs != "" {
		m.To = decodePids(r.ToIDs)
		if m.To == nil {
			m.To = []string{}
		}
	}
	return m
}

func encodePids(pids []string) string {
	if len(pids) == 0 {
		return ""
	}
	b, _ := json.Marshal(pids)
	return string(b)
}

// encodeTo stores Message.To: "" for everyone (nil), a JSON array
// otherwise ("[]" for nobody).
func encodeTo(to []string) string {
	if to == nil {
		return ""
	}
	if len(to) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(to)
	return string(b)
}

func decodePids(s string) []string {
	if s == "" {
		return nil
	}
	var p []string
	_ = json.Unmarshal([]byte(s), &p)
	return p
}

// lcType extracts the "_lctype" of a typed-message body: the integer field
// of a JSON object, else 0.
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
	if err != nil || n < -1<<31 || n > 1<<31-1 {
		return 0
	}
	return int(n)
}

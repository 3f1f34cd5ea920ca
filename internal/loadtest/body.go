package loadtest

import (
	"strconv"
	"strings"
)

// Message bodies are TextMessages whose text starts with a marker, the
// run id, the sender's sequence number and the send time (Unix ns), padded
// with 'x' to the requested body size:
//
//	{"_lctype":-1,"_lctext":"ll1 <run> <seq> <sentns> xxxx..."}
//
// so a receiver can measure latency and check exactly-once without a JSON
// decoder on the hot path.
const bodyMarker = `"_lctext":"ll1 `

// Body returns the body of message seq of run sent at sentNS, about size
// bytes long.
func Body(run string, seq int64, sentNS int64, size int) string {
	var b strings.Builder
	b.Grow(size + 8)
	b.WriteString(`{"_lctype":-1,`)
	b.WriteString(bodyMarker)
	b.WriteString(run)
	b.WriteByte(' ')
	b.WriteString(strconv.FormatInt(seq, 10))
	b.WriteByte(' ')
	b.WriteString(strconv.FormatInt(sentNS, 10))
	b.WriteByte(' ')
	for pad := size - b.Len() - 2; pad > 0; pad-- {
		b.WriteByte('x')
	}
	b.WriteString(`"}`)
	return b.String()
}

// ParseBody reads seq and the send time back from a body of run. ok is
// false for any other body (another run, another app's message).
func ParseBody(data, run string) (seq, sentNS int64, ok bool) {
	i := strings.Index(data, bodyMarker)
	if i < 0 {
		return 0, 0, false
	}
	s := data[i+len(bodyMarker):]
	r, s, ok1 := strings.Cut(s, " ")
	a, s, ok2 := strings.Cut(s, " ")
	t, _, ok3 := strings.Cut(s, " ")
	if !ok1 || !ok2 || !ok3 || r != run {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseInt(a, 10, 64)
	sentNS, err2 := strconv.ParseInt(t, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return seq, sentNS, true
}

package typedmsg

// Scanning helpers for documents already known to be valid JSON: they find
// top-level members and nesting depth without building values.

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the JSON string starting at s[i].
func skipString(s string, i int) int {
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(s)
}

// skipValue returns the index just past the JSON value starting at s[i].
func skipValue(s string, i int) int {
	switch s[i] {
	case '"':
		return skipString(s, i)
	case '{', '[':
		nesting := 0
		for i < len(s) {
			switch s[i] {
			case '"':
				i = skipString(s, i)
				continue
			case '{', '[':
				nesting++
			case '}', ']':
				nesting--
				if nesting == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(s)
	}
	for i < len(s) {
		switch s[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// eachMember calls fn with the quoted key and the raw value of each member
// of the valid JSON object at the start of s, in document order.
func eachMember(s string, fn func(key, value string)) {
	i := skipSpace(s, 1) // past '{'
	for i < len(s) && s[i] == '"' {
		end := skipString(s, i)
		key := s[i:end]
		i = skipSpace(s, end)
		i = skipSpace(s, i+1) // past ':'
		end = skipValue(s, i)
		fn(key, s[i:end])
		i = skipSpace(s, end)
		if i < len(s) && s[i] == ',' {
			i = skipSpace(s, i+1)
		}
	}
}

// depth returns the deepest nesting of objects and arrays in the valid JSON
// document s.
func depth(s string) int {
	cur, most := 0, 0
	for i := 0; i < len(s); {
		switch s[i] {
		case '"':
			i = skipString(s, i)
			continue
		case '{', '[':
			cur++
			most = max(most, cur)
		case '}', ']':
			cur--
		}
		i++
	}
	return most
}

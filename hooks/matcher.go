package hooks

import (
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// matcher is an immutable Aho-Corasick automaton over case-folded runes. It is
// built once per word list and then shared by any number of goroutines.
//
// Transitions are stored compactly (CSR layout): the edges of node n are
// edgeRune[edgeStart[n]:edgeStart[n+1]], sorted by rune, with targets in
// edgeNext. The root, visited on almost every rune of clean text, also has a
// dense table for ASCII.
type matcher struct {
	edgeStart []int32
	edgeRune  []rune
	edgeNext  []int32
	fail      []int32
	depth     []int32 // length in runes of the node's string
	// longest is the length in runes of the longest word that is a suffix
	// of the node's string, 0 when none: the leftmost match ending here.
	longest []int32

	// ASCII text meets the same few nodes over and over (the root and the
	// nodes of short prefixes). Those nodes get a dense row of complete
	// transitions, failure links already followed: one load per byte. The
	// ASCII runes that occur in words are numbered 1..n (asciiClass); class
	// 0, a rune in no word, always leads back to the root.
	asciiClass [utf8.RuneSelf]uint8
	denseRow   []int32 // per node: offset of its row in denseNext, or -1
	denseNext  []int32
	// rootBlocks are the root's edges for runes below foldTableLimit in
	// blocks of 256 (nil: no edge in the block; -1 in a block: no edge), as
	// the root of a large list has thousands of CJK edges.
	rootBlocks [foldTableLimit >> 8]*[256]int32

	words int // number of distinct non-empty words
	fold  *foldTable
}

// maxDenseEntries bounds the memory of dense rows (4 bytes each).
const maxDenseEntries = 1 << 20

// newMatcher builds the automaton for words; empty words are ignored.
func newMatcher(words []string) *matcher {
	ft := foldTables()
	folded := make([][]rune, 0, len(words))
	for _, w := range words {
		if w == "" {
			continue
		}
		rs := make([]rune, 0, len(w))
		for _, r := range w {
			rs = append(rs, ft.fold(r))
		}
		folded = append(folded, rs)
	}
	// Inserting sorted words means a node's children arrive in rune order
	// and only its last child can be extended: no per-node maps needed.
	slices.SortFunc(folded, slices.Compare)
	folded = slices.CompactFunc(folded, slices.Equal)

	type node struct {
		runes    []rune
		children []int32
		terminal bool
		depth    int32
	}
	nodes := []node{{}}
	for _, w := range folded {
		n := int32(0)
		for _, r := range w {
			cs := nodes[n].children
			if k := len(cs); k > 0 && nodes[n].runes[k-1] == r {
				n = cs[k-1]
				continue
			}
			child := int32(len(nodes))
			nodes = append(nodes, node{depth: nodes[n].depth + 1})
			nodes[n].runes = append(nodes[n].runes, r)
			nodes[n].children = append(nodes[n].children, child)
			n = child
		}
		nodes[n].terminal = true
	}

	m := &matcher{
		edgeStart: make([]int32, len(nodes)+1),
		fail:      make([]int32, len(nodes)),
		depth:     make([]int32, len(nodes)),
		longest:   make([]int32, len(nodes)),
		words:     len(folded),
		fold:      ft,
	}
	edges := 0
	for i := range nodes {
		edges += len(nodes[i].children)
	}
	m.edgeRune = make([]rune, 0, edges)
	m.edgeNext = make([]int32, 0, edges)
	for i := range nodes {
		m.edgeStart[i] = int32(len(m.edgeRune))
		m.edgeRune = append(m.edgeRune, nodes[i].runes...)
		m.edgeNext = append(m.edgeNext, nodes[i].children...)
		m.depth[i] = nodes[i].depth
	}
	m.edgeStart[len(nodes)] = int32(len(m.edgeRune))
	for e := m.edgeStart[0]; e < m.edgeStart[1]; e++ {
		r := m.edgeRune[e]
		if r < utf8.RuneSelf || r >= foldTableLimit {
			continue
		}
		blk := m.rootBlocks[r>>8]
		if blk == nil {
			blk = new([256]int32)
			for j := range blk {
				blk[j] = -1
			}
			m.rootBlocks[r>>8] = blk
		}
		blk[r&0xff] = m.edgeNext[e]
	}
	var classRunes []rune // classRunes[c-1] is the rune of class c
	for _, r := range m.edgeRune {
		if r < utf8.RuneSelf && m.asciiClass[r] == 0 {
			classRunes = append(classRunes, r)
			m.asciiClass[r] = uint8(len(classRunes))
		}
	}
	// Dense rows go to the root and to nodes with several ASCII children,
	// shallow ones first (node numbers grow with depth along each word,
	// and the budget mostly matters for huge lists).
	rowLen := int32(len(classRunes) + 1)
	m.denseRow = make([]int32, len(nodes))
	rows := int32(0)
	for n := range nodes {
		m.denseRow[n] = -1
		asciiChildren := 0
		for _, r := range nodes[n].runes {
			if r < utf8.RuneSelf {
				asciiChildren++
			}
		}
		if n == 0 || (asciiChildren >= 2 && int(rows+1)*int(rowLen) <= maxDenseEntries) {
			m.denseRow[n] = rows * rowLen
			rows++
		}
	}
	m.denseNext = make([]int32, rows*rowLen)

	// Failure links and longest outputs, breadth first so that a node's
	// failure target (shallower) is complete before the node.
	queue := make([]int32, 0, len(nodes))
	queue = append(queue, 0)
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		if row := m.denseRow[u]; row >= 0 {
			// fail[u] is shallower, so its row (if any) is complete.
			for c, r := range classRunes {
				next := m.next(u, r)
				if next < 0 && u != 0 {
					next = m.step(m.fail[u], r)
				}
				m.denseNext[row+int32(c)+1] = max(next, 0)
			}
		}
		for e := m.edgeStart[u]; e < m.edgeStart[u+1]; e++ {
			r, v := m.edgeRune[e], m.edgeNext[e]
			if u != 0 {
				f := m.fail[u]
				for {
					if next := m.next(f, r); next >= 0 {
						m.fail[v] = next
						break
					}
					if f == 0 {
						break
					}
					f = m.fail[f]
				}
			}
			if nodes[v].terminal {
				m.longest[v] = m.depth[v]
			} else {
				m.longest[v] = m.longest[m.fail[v]]
			}
			queue = append(queue, v)
		}
	}
	return m
}

// step returns the node after n on reading r: the child along r, or the
// child of the longest proper suffix that has one, or the root.
func (m *matcher) step(n int32, r rune) int32 {
	for {
		if r < utf8.RuneSelf {
			if row := m.denseRow[n]; row >= 0 {
				return m.denseNext[row+int32(m.asciiClass[r])]
			}
		}
		if next := m.next(n, r); next >= 0 {
			return next
		}
		if n == 0 {
			return 0
		}
		n = m.fail[n]
	}
}

// next returns the child of node n along r, or -1.
func (m *matcher) next(n int32, r rune) int32 {
	if n == 0 && r >= utf8.RuneSelf && r < foldTableLimit {
		if blk := m.rootBlocks[r>>8]; blk != nil {
			return blk[r&0xff]
		}
		return -1
	}
	lo, hi := m.edgeStart[n], m.edgeStart[n+1]
	if hi-lo <= 8 {
		for e := lo; e < hi; e++ {
			if m.edgeRune[e] == r {
				return m.edgeNext[e]
			}
			if m.edgeRune[e] > r {
				return -1
			}
		}
		return -1
	}
	for lo < hi {
		mid := int32(uint32(lo+hi) >> 1)
		switch c := m.edgeRune[mid]; {
		case c == r:
			return m.edgeNext[mid]
		case c < r:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return -1
}

// replace returns s with every match replaced by repl, choosing matches
// leftmost-longest and non-overlapping, and whether anything matched. Text
// outside the matches is kept byte for byte. s is read as `for range` reads
// it: an invalid byte is one U+FFFD rune. No allocation when nothing matches.
func (m *matcher) replace(s, repl string) (string, bool) {
	if m == nil || m.words == 0 {
		return s, false
	}
	var (
		out   *strings.Builder
		last  int   // bytes of s already copied to out
		state int32 // automaton node
		runes int   // runes consumed since the scan (re)started
		// The best match found so far that may still be beaten by one
		// starting further left or, at the same start, ending later.
		have                 bool
		candStart, candEnd   int // bytes
		candRuneStart, cRune int // runes; cRune is the rune count at candEnd
	)
	i := 0
	for {
		if i >= len(s) {
			if !have {
				break
			}
		} else {
			if c := s[i]; c < utf8.RuneSelf {
				// The common case inlined: ASCII at a node with a
				// dense row.
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				if row := m.denseRow[state]; row >= 0 {
					state = m.denseNext[row+int32(m.asciiClass[c])]
				} else {
					state = m.step(state, rune(c))
				}
				i++
			} else {
				r, w := utf8.DecodeRuneInString(s[i:])
				state = m.step(state, m.fold.fold(r))
				i += w
			}
			runes++
			if n := int(m.longest[state]); n > 0 {
				start := runes - n
				if !have || start <= candRuneStart {
					// An earlier start wins whatever its length; at the
					// same start, this later end is longer.
					have = true
					candRuneStart, cRune = start, runes
					candEnd = i
					candStart = backRunes(s, i, n)
				}
			}
			// No match starting at or before the candidate's start can
			// still come: every future match starts inside the
			// automaton's current string or later.
			if !have || candRuneStart >= runes-int(m.depth[state]) {
				continue
			}
		}
		if out == nil {
			out = new(strings.Builder)
			out.Grow(len(s) + len(repl))
		}
		out.WriteString(s[last:candStart])
		out.WriteString(repl)
		last = candEnd
		// Matches after the candidate may have been passed over while it
		// was pending; rescan from its end with a fresh automaton.
		i, runes, state, have = candEnd, cRune, 0, false
	}
	if out == nil {
		return s, false
	}
	out.WriteString(s[last:])
	return out.String(), true
}

// backRunes returns the byte offset n runes before byte offset end of s.
// Decoding backwards finds the same rune boundaries as decoding forwards,
// invalid bytes included.
func backRunes(s string, end, n int) int {
	for ; n > 0; n-- {
		if c := s[end-1]; c < utf8.RuneSelf {
			end--
			continue
		}
		_, w := utf8.DecodeLastRuneInString(s[:end])
		end -= w
	}
	return end
}

// foldTable maps a rune to the canonical member of its simple case folding
// orbit (unicode.SimpleFold), so that "K", "k" and U+212A KELVIN SIGN all
// become 'k'. Runes below foldTableLimit are looked up in 256-rune blocks,
// nil for blocks where every rune folds to itself (CJK, emoji, ...).
type foldTable struct {
	blocks [foldTableLimit >> 8]*[256]rune
}

const foldTableLimit = 0x20000

var foldTables = sync.OnceValue(func() *foldTable {
	t := new(foldTable)
	for b := range t.blocks {
		var blk [256]rune
		identity := true
		for j := range blk {
			r := rune(b<<8 | j)
			blk[j] = canonicalFold(r)
			if blk[j] != r {
				identity = false
			}
		}
		if !identity {
			t.blocks[b] = &blk
		}
	}
	return t
})

func (t *foldTable) fold(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	if r < foldTableLimit {
		if blk := t.blocks[r>>8]; blk != nil {
			return blk[r&0xff]
		}
		return r
	}
	return canonicalFold(r)
}

// canonicalFold returns the smallest rune of r's simple folding orbit,
// lower-cased when that is an ASCII capital (so ASCII folds to lower case).
func canonicalFold(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	if 'A' <= least && least <= 'Z' {
		least += 'a' - 'A'
	}
	return least
}

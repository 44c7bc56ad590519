package sentiment

// acMatcher is an Aho–Corasick automaton over runes: all patterns are found
// in one left-to-right pass, whatever their number. Transitions live in one
// open-addressing hash table keyed by (state, rune), which keeps the
// automaton compact for tens of thousands of CJK patterns and lookups free
// of allocation. Read-only after build; safe for concurrent use.
type acMatcher struct {
	st    []acState
	slots []acSlot
	shift uint
	// root is a dense transition table from the root state for CJK
	// ideographs (index r-0x4E00; -1: none). Most steps of a large CJK
	// automaton end at the root, so this saves a hash probe on most
	// characters.
	root []int32
	// filter has one bit per hashed (state, rune) transition: a clear bit
	// proves a miss without touching the big slot table (most probes of a
	// CJK lexicon are misses that then fall back to the root).
	filter      []uint64
	filterShift uint
	// starts has bit r&0xFFFF set when some pattern starts with a rune
	// congruent to r: at the root, a clear bit means "stay at the root"
	// without a probe (most characters of a text start no keyword).
	starts [1 << 16 / 64]uint64
}

// acState packs one state's links into 16 bytes: one cache line access.
type acState struct {
	fail  int32 // failure link
	out   int32 // pattern ending exactly at this state, or -1
	dict  int32 // nearest state on the failure chain with out >= 0, or -1
	depth int32 // length in runes of the path to this state
}

type acSlot struct {
	key uint64
	val int32
}

const acEmpty = ^uint64(0)

func acKey(s int32, r rune) uint64 { return uint64(uint32(s))<<32 | uint64(uint32(r)) }

func (a *acMatcher) slot(k uint64) uint64 { return (k * 0x9E3779B97F4A7C15) >> a.shift }

// next returns the goto transition from s on r, or -1.
func (a *acMatcher) next(s int32, r rune) int32 {
	if s == 0 {
		if a.root != nil && uint32(r-sentHanLo) <= sentHanHi-sentHanLo {
			return a.root[r-sentHanLo]
		}
		if b := uint32(r) & 0xFFFF; a.starts[b>>6]&(1<<(b&63)) == 0 {
			return -1
		}
	}
	k := acKey(s, r)
	h := k * 0x9E3779B97F4A7C15
	if a.filter != nil {
		b := (h ^ h>>29) >> a.filterShift
		if a.filter[b>>6]&(1<<(b&63)) == 0 {
			return -1
		}
	}
	mask := uint64(len(a.slots) - 1)
	for i := h >> a.shift; ; i = (i + 1) & mask {
		sl := &a.slots[i]
		switch sl.key {
		case k:
			return sl.val
		case acEmpty:
			return -1
		}
	}
}

// mayStart is a cheap test (inlined into the matching loop): false means no
// pattern starts with r, so from the root the automaton stays at the root.
func (a *acMatcher) mayStart(r rune) bool {
	b := uint32(r) & 0xFFFF
	return a.starts[b>>6]&(1<<(b&63)) != 0
}

// step advances the automaton by one rune.
func (a *acMatcher) step(s int32, r rune) int32 {
	for {
		if n := a.next(s, r); n >= 0 {
			return n
		}
		if s == 0 {
			return 0
		}
		s = a.st[s].fail
	}
}

// newACMatcher builds the automaton. Pattern i is patterns[i]; empty
// patterns never match. Duplicate patterns keep the lowest index.
func newACMatcher(patterns [][]rune) *acMatcher {
	type edge struct {
		r  rune
		to int32
	}
	children := [][]edge{nil}
	trans := map[uint64]int32{}
	out := []int32{-1}
	depth := []int32{0}
	for pi, p := range patterns {
		if len(p) == 0 {
			continue
		}
		s := int32(0)
		for _, r := range p {
			k := acKey(s, r)
			n, ok := trans[k]
			if !ok {
				n = int32(len(out))
				trans[k] = n
				children[s] = append(children[s], edge{r, n})
				children = append(children, nil)
				out = append(out, -1)
				depth = append(depth, depth[s]+1)
			}
			s = n
		}
		if out[s] < 0 {
			out[s] = int32(pi)
		}
	}
	n := len(out)
	fail := make([]int32, n)
	dict := make([]int32, n)
	// Breadth-first: a state's failure link is known before its children's.
	queue := make([]int32, 0, n)
	dict[0] = -1
	for _, e := range children[0] {
		fail[e.to] = 0
		dict[e.to] = -1
		queue = append(queue, e.to)
	}
	for qi := 0; qi < len(queue); qi++ {
		s := queue[qi]
		for _, e := range children[s] {
			f := fail[s]
			for {
				if t, ok := trans[acKey(f, e.r)]; ok {
					fail[e.to] = t
					break
				}
				if f == 0 {
					fail[e.to] = 0
					break
				}
				f = fail[f]
			}
			fl := fail[e.to]
			if out[fl] >= 0 {
				dict[e.to] = fl
			} else {
				dict[e.to] = dict[fl]
			}
			queue = append(queue, e.to)
		}
	}
	size := 16
	for size < 2*len(trans) {
		size <<= 1
	}
	bits := uint(0)
	for 1<<bits < size {
		bits++
	}
	a := &acMatcher{st: make([]acState, n), shift: 64 - bits, slots: make([]acSlot, size)}
	for i := range a.st {
		a.st[i] = acState{fail: fail[i], out: out[i], dict: dict[i], depth: depth[i]}
	}
	for i := range a.slots {
		a.slots[i].key = acEmpty
	}
	mask := uint64(size - 1)
	// Insert in state order so the table layout does not depend on map order.
	for s := range children {
		for _, e := range children[s] {
			k := acKey(int32(s), e.r)
			i := a.slot(k)
			for a.slots[i].key != acEmpty {
				i = (i + 1) & mask
			}
			a.slots[i] = acSlot{key: k, val: e.to}
		}
	}

	for _, e := range children[0] {
		b := uint32(e.r) & 0xFFFF
		a.starts[b>>6] |= 1 << (b & 63)
	}
	if len(trans) > 4096 {
		fbits := uint(0)
		for 1<<fbits < 16*len(trans) {
			fbits++
		}
		a.filter = make([]uint64, (1<<fbits)/64)
		a.filterShift = 64 - fbits
		for s := range children {
			for _, e := range children[s] {
				h := acKey(int32(s), e.r) * 0x9E3779B97F4A7C15
				b := (h ^ h>>29) >> a.filterShift
				a.filter[b>>6] |= 1 << (b & 63)
			}
		}
	}
	if len(children[0]) > 256 {
		// Dense root table over the CJK Unified Ideographs (84 KB).
		a.root = make([]int32, sentHanHi-sentHanLo+1)
		for i := range a.root {
			a.root[i] = -1
		}
		for _, e := range children[0] {
			if e.r >= sentHanLo && e.r <= sentHanHi {
				a.root[e.r-sentHanLo] = e.to
			}
		}
	}
	return a
}

// lookup returns the index of the pattern that is exactly p, or -1.
func (a *acMatcher) lookup(p []rune) int32 {
	s := int32(0)
	for _, r := range p {
		if s = a.next(s, r); s < 0 {
			return -1
		}
	}
	return a.st[s].out
}

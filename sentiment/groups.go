package sentiment

import (
	"sort"

	"lookout/config"
	"lookout/item"
)

// sentGroups is the compiled form of the config's keyword groups: every
// keyword of every group (any, all and none lists) is one pattern of a single
// Aho–Corasick automaton over normalised text, so one pass finds them all and
// matching is case-, width- and traditional/simplified-insensitive exactly as
// the classifier's normalisation is.
type sentGroups struct {
	ac     *acMatcher
	npat   int
	groups []sentGroup // sorted by name: output order is stable
}

type sentGroup struct {
	name, category, severity string
	any, all, none           []int32  // pattern ids
	anyTerms, allTerms       []string // keywords as written in config
}

// compileGroups normalises every keyword and builds the matcher. Keywords
// that normalise to nothing (a bare URL or @mention) are an error.
func compileGroups(norm *normaliser, groups map[string]config.KeywordGroup) (*sentGroups, error) {
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	sg := &sentGroups{}
	ids := map[string]int32{}
	var pats [][]rune
	intern := func(group, list, kw string) (int32, error) {
		rs := norm.normalize(nil, kw)
		if len(rs) == 0 {
			return 0, errorf("keyword group %q: %s keyword %q is empty after normalisation", group, list, kw)
		}
		key := string(rs)
		if id, ok := ids[key]; ok {
			return id, nil
		}
		id := int32(len(pats))
		ids[key] = id
		pats = append(pats, rs)
		return id, nil
	}
	for _, name := range names {
		g := groups[name]
		if len(g.Any) == 0 && len(g.All) == 0 {
			return nil, errorf("keyword group %q: needs at least one of any or all", name)
		}
		out := sentGroup{name: name, category: g.Category, severity: g.Severity, anyTerms: g.Any, allTerms: g.All}
		if out.category == "" {
			out.category = name
		}
		if out.severity == "" {
			out.severity = "yellow"
		}
		for _, list := range []struct {
			name string
			kws  []string
			dst  *[]int32
		}{{"any", g.Any, &out.any}, {"all", g.All, &out.all}, {"none", g.None, &out.none}} {
			for _, kw := range list.kws {
				id, err := intern(name, list.name, kw)
				if err != nil {
					return nil, err
				}
				*list.dst = append(*list.dst, id)
			}
		}
		sg.groups = append(sg.groups, out)
	}
	sg.npat = len(pats)
	sg.ac = newACMatcher(pats)
	return sg, nil
}

// sentGroupScratch records which patterns occurred in the current text;
// seen[p] == gen means pattern p occurred (no clearing between texts).
type sentGroupScratch struct {
	seen []uint32
	gen  uint32
}

// match appends the matching groups to dst, reusing the Terms backing arrays
// of dst's spare capacity.
func (sg *sentGroups) match(sc *sentGroupScratch, runes []rune, dst []item.Match) []item.Match {
	dst = dst[:0]
	if sg == nil || len(sg.groups) == 0 {
		return dst
	}
	if len(sc.seen) != sg.npat {
		sc.seen = make([]uint32, sg.npat)
		sc.gen = 0
	}
	sc.gen++
	if sc.gen == 0 {
		clear(sc.seen)
		sc.gen = 1
	}
	gen := sc.gen
	hits := 0
	ac := sg.ac
	st := int32(0)
	for _, r := range runes {
		if st == 0 && !ac.mayStart(r) {
			continue // most characters start no keyword: stay at the root
		}
		st = ac.step(st, r)
		for s := st; s > 0; s = ac.st[s].dict {
			if p := ac.st[s].out; p >= 0 {
				sc.seen[p] = gen
				hits++
			}
		}
	}
	if hits == 0 {
		return dst
	}
	for gi := range sg.groups {
		g := &sg.groups[gi]
		ok := true
		for _, p := range g.all {
			if sc.seen[p] != gen {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		for _, p := range g.none {
			if sc.seen[p] == gen {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		anyHit := len(g.any) == 0
		for _, p := range g.any {
			if sc.seen[p] == gen {
				anyHit = true
				break
			}
		}
		if !anyHit {
			continue
		}
		n := len(dst)
		if n < cap(dst) {
			dst = dst[:n+1]
		} else {
			dst = append(dst, item.Match{})
		}
		m := &dst[n]
		terms := m.Terms[:0]
		for i, p := range g.any {
			if sc.seen[p] == gen {
				terms = append(terms, g.anyTerms[i])
			}
		}
		terms = append(terms, g.allTerms...)
		*m = item.Match{Group: g.name, Category: g.category, Severity: g.severity, Terms: terms}
	}
	return dst
}

package labels

import (
	"strings"
	"testing"

	"lookout/item"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in    string
		name  string
		typ   MatchType
		value string
		str   string // String(); "" when the same as in
	}{
		{`room="21452505"`, "room", MatchEqual, "21452505", ""},
		{`room=21452505`, "room", MatchEqual, "21452505", `room="21452505"`},
		{`room!=1`, "room", MatchNotEqual, "1", `room!="1"`},
		{`severity=~"red|yellow"`, "severity", MatchRegexp, "red|yellow", ""},
		{`severity!~yellow|green`, "severity", MatchNotRegexp, "yellow|green", `severity!~"yellow|green"`},
		{`  rule =~ "neg.*"  `, "rule", MatchRegexp, "neg.*", `rule=~"neg.*"`},
		{`team=`, "team", MatchEqual, "", `team=""`},
		{`team=""`, "team", MatchEqual, "", ""},
		{`a:b_1=x y`, "a:b_1", MatchEqual, "x y", `a:b_1="x y"`},
		{`q="say \"hi\", ok"`, "q", MatchEqual, `say "hi", ok`, ""},
		{`p="a\\b"`, "p", MatchEqual, `a\b`, ""},
		{`nl="a\nb"`, "nl", MatchEqual, "a\nb", ""},
		{`re=~"\d+"`, "re", MatchRegexp, `\d+`, `re=~"\\d+"`}, // a stray backslash stays a backslash
		{`room=~直播.*`, "room", MatchRegexp, "直播.*", `room=~"直播.*"`},
		{`v==x`, "v", MatchEqual, "=x", `v="=x"`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			m, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if m.Name != tc.name || m.Type != tc.typ || m.Value != tc.value {
				t.Fatalf("got %q %s %q, want %q %s %q", m.Name, m.Type, m.Value, tc.name, tc.typ, tc.value)
			}
			want := tc.str
			if want == "" {
				want = tc.in
			}
			if m.String() != want {
				t.Fatalf("String() = %s, want %s", m, want)
			}
			// What String writes reads back to the same matcher.
			m2, err := Parse(m.String())
			if err != nil || m2.Name != m.Name || m2.Type != m.Type || m2.Value != m.Value {
				t.Fatalf("%s does not round-trip: %v %v", m, m2, err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "want a label name first"},
		{"room", `want an operator after "room"`},
		{"=x", "want a label name first"},
		{"1room=x", "want a label name first"},
		{"é=1", "want a label name first"},
		{"room~=1", "want an operator"},
		{"rule=~(", "bad regular expression"},
		{"rule!~[a-", "bad regular expression"},
		{`room="1`, "no closing quote"},
		{`room="1\"`, "no closing quote"},
		{`room="1"x`, "text after the closing quote"},
		{`room=a"b`, "unquoted value contains a double quote"},
		{"room=\xff", "not valid UTF-8"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			m, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("parsed as %s, want an error containing %q", m, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestParseList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // Matchers.String(), or the error's text
		bad  bool
	}{
		{`{room="1", severity=~"red|yellow"}`, `{room="1", severity=~"red|yellow"}`, false},
		{`room=1,severity!=green`, `{room="1", severity!="green"}`, false},
		{`{ room = "1" , }`, `{room="1"}`, false},
		{`q="a,b",r=1`, `{q="a,b", r="1"}`, false},
		{`q="a\",b"`, `{q="a\",b"}`, false},
		{`room=1`, `{room="1"}`, false},
		{`{}`, "empty matcher", true},
		{``, "empty matcher", true},
		{`room=1,,rule=x`, "empty matcher", true},
		{`{room=1`, "without closing }", true},
		{`room=1,rule=~(`, "bad regular expression", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			ms, err := ParseList(tc.in)
			if tc.bad {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, %v; want an error containing %q", ms, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ms.String() != tc.want {
				t.Fatalf("got %s, want %s", ms, tc.want)
			}
		})
	}
}

func TestFromMap(t *testing.T) {
	ms, err := FromMap(map[string]string{"severity": "red", "platform": "~bili.*"})
	if err != nil {
		t.Fatal(err)
	}
	if ms.String() != `{platform=~"bili.*", severity="red"}` {
		t.Fatalf("got %s", ms)
	}
	if _, err := FromMap(map[string]string{"room": "~("}); err == nil || !strings.Contains(err.Error(), "room") {
		t.Fatalf("bad regex in a map: %v", err)
	}
	if _, err := FromMap(map[string]string{"bad name": "x"}); err == nil || !strings.Contains(err.Error(), "bad label name") {
		t.Fatalf("bad name in a map: %v", err)
	}
}

func TestMatches(t *testing.T) {
	ls := map[string]string{"room": "21452505", "severity": "yellow", "rule": "negative_share"}
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`room="21452505"`, true},
		{`room!="21452505"`, false},
		{`room="2145"`, false},
		{`severity=~"yellow|green"`, true},
		{`severity!~"yellow|green"`, false},
		{`rule=~"neg.*"`, true},
		{`rule=~"neg"`, false},     // anchored at the end
		{`rule=~"share"`, false},   // and at the start
		{`rule=~"neg|x.*"`, false}, // the whole alternation is anchored
		{`rule!~"neg"`, true},      // so its negation holds
		{`team=""`, true},          // an absent label reads as ""
		{`team!="live"`, true},     // so != holds for it
		{`team=~".*"`, true},       // and .* matches it
		{`team=~".+"`, false},      // but .+ does not
		{`room!=""`, true},         // a present label is not ""
		{`{room=~"2.*", severity="yellow"}`, true},
		{`{room=~"2.*", severity="red"}`, false}, // all must hold
	} {
		t.Run(tc.in, func(t *testing.T) {
			ms, err := ParseList(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := ms.Matches(ls); got != tc.want {
				t.Fatalf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
	if !(Matchers{}).Matches(ls) {
		t.Fatal("no matchers must match everything")
	}
}

func TestMatchItem(t *testing.T) {
	it := &item.Item{Source: "brand-live", Platform: "bilibili", Room: "21452505", Kind: item.KindChat,
		Labels: map[string]string{"brand": "acme", "source": "a-label-not-the-field"}}
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`source="brand-live"`, true}, // the field, not the label of that name
		{`source="a-label-not-the-field"`, false},
		{`platform=~"bili.*"`, true},
		{`platform!~"bili.*"`, false},
		{`room="21452505"`, true},
		{`room!="21452505"`, false},
		{`kind="chat"`, true},
		{`kind=~"gift|superchat"`, false},
		{`brand="acme"`, true},
		{`brand!="acme"`, false},
		{`team=""`, true},
		{`team="x"`, false},
		{`{source="brand-live", kind="chat", brand=~"ac.*"}`, true},
		{`{source="brand-live", kind="gift"}`, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			ms, err := ParseList(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := ms.MatchItem(it); got != tc.want {
				t.Fatalf("MatchItem = %v, want %v", got, tc.want)
			}
		})
	}
	if !(Matchers{}).MatchItem(&item.Item{}) {
		t.Fatal("no matchers must match every item")
	}
}

func TestMatchItemDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ms, err := ParseList(`{source="brand-live", platform=~"bili.*", kind!="gift", brand=~"ac.*", room!~"9.*"}`)
	if err != nil {
		t.Fatal(err)
	}
	it := &item.Item{Source: "brand-live", Platform: "bilibili", Room: "21452505", Kind: item.KindChat,
		Labels: map[string]string{"brand": "acme"}}
	if !ms.MatchItem(it) {
		t.Fatal("does not match")
	}
	if n := testing.AllocsPerRun(200, func() { ms.MatchItem(it) }); n != 0 {
		t.Fatalf("MatchItem allocates %v times per call", n)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"room=1", `a!="b"`, "x=~.*", "y!~(a|b)", "", "=", "a=~(", "é=1", `q="a\"b"`, `p="\\"`, `{a=1,b="2"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Parse(s)
		if err == nil {
			m2, err := Parse(m.String())
			if err != nil || m2.Name != m.Name || m2.Type != m.Type || m2.Value != m.Value {
				t.Fatalf("%q → %s does not round-trip: %v", s, m, err)
			}
		}
		ms, err := ParseList(s)
		if err == nil {
			ms2, err := ParseList(ms.String())
			if err != nil || ms2.String() != ms.String() {
				t.Fatalf("%q → %s does not round-trip: %v", s, ms, err)
			}
		}
	})
}

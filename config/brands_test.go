package config

import (
	"strings"
	"testing"
)

func TestBrands(t *testing.T) {
	const src = `sources:
  - id: ours
    kind: rss
    url: https://example.com/a.xml
    brand: acme
  - id: theirs
    kind: rss
    url: https://example.com/b.xml
    labels: { brand: rival, team: x }
`
	c, err := Parse([]byte(src+"brands:\n  own: [acme]\n  rooms: { \"42\": other }\n"), "b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []map[string]string{{"brand": "acme", "brand_role": "own"}, {"brand": "rival", "brand_role": "competitor", "team": "x"}} {
		for k, v := range want {
			if got := c.Sources[i].Labels[k]; got != v {
				t.Errorf("sources[%d] label %s = %q, want %q", i, k, got, v)
			}
		}
	}
	if c.Brands.BrandRole("other") != BrandCompetitor {
		t.Error("a room's brand not in brands.own is a competitor")
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"brand and labels.brand differ", strings.Replace(src, "labels: { brand: rival, team: x }", "brand: rival\n    labels: { brand: acme }", 1), `b.yaml:6: sources[1].brand: "rival" differs from labels.brand "acme"`},
		{"own brand nobody has", src + "brands:\n  own: [acmee]\n", `b.yaml:11: brands.own[0]: "acmee" is the brand of no source or room`},
		{"unknown key", src + "brands:\n  ours: [acme]\n", "ours"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "b.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	d := Compare(c, mustParse(t, src+"brands:\n  own: [rival]\n"))
	if !d.Brands || len(d.SourcesChanged) != 2 {
		t.Errorf("changing brands.own: %+v, want brands changed and both sources restarted (their brand_role)", d)
	}
}

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse([]byte(text), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBrandsWithoutOwnHaveNoRole(t *testing.T) {
	c := mustParse(t, `sources:
  - id: a
    kind: rss
    url: https://example.com/a.xml
    brand: acme
`)
	if got := c.Sources[0].Labels; got["brand"] != "acme" || got["brand_role"] != "" {
		t.Errorf("labels %v, want brand acme and no role without brands.own", got)
	}
}

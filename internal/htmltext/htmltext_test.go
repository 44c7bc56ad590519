package htmltext

import "testing"

func TestText(t *testing.T) {
	line := Options{}
	para := Options{Paragraph: "\n", Alt: true}
	for _, tc := range []struct {
		in   string
		o    Options
		want string
	}{
		{"  plain   text ", line, "plain text"},
		{"<p>a</p><p>b</p>", line, "a b"},
		{"x<b>y</b>z<div>w</div>", line, "xyz w"},
		{"<script>var a=1</script>t<style>p{}</style>", line, "t"},
		{"&lt;tag&gt; &amp;", line, "<tag> &"},
		{"<p>a</p><p>b</p>", para, "a\nb"},
		{"x<br>y<br/>z", para, "x\ny\nz"},
		{`好<img alt="[doge]" src="d.png">棒`, para, "好[doge]棒"},
		{`好<img alt="[doge]" src="d.png">棒`, line, "好 棒"},
		{"<p>a</p><p>b</p>", Options{Paragraph: "\n\n"}, "a\n\nb"},
	} {
		if got := Text(tc.in, tc.o); got != tc.want {
			t.Errorf("Text(%q, %+v) = %q, want %q", tc.in, tc.o, got, tc.want)
		}
	}
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"<p>a</p>", "<img alt='x'>", "&amp;", "<script>", "text <unterminated", "\xff<b>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, o := range []Options{{}, {Paragraph: "\n", Alt: true}} {
			got := Text(s, o)
			if o.Paragraph == "" && Collapse(got) != got {
				t.Fatalf("one-line text %q is not collapsed", got)
			}
		}
	})
}

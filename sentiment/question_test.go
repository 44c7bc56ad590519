package sentiment

import "testing"

func TestIsQuestion(t *testing.T) {
	f, err := NewFeaturizer(nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"什么时候发货", true}, {"大概几天能到", true}, {"有没有大码", true}, {"能便宜点吗", true},
		{"链接在哪", true}, {"这个怎么用", true}, {"真的假的？", true}, {"为什么还不发货", true},
		{"主播多高呢", true}, {"when does it ship", true}, {"is it waterproof", true}, {"price?", true},
		{"主播晚上好", false}, {"太贵了", false}, {"几乎没人", false}, {"签到", false}, {"this is a scam", false},
		{"哈哈哈", false}, {"质量好不好", true}, {"", false},
	} {
		var s FeatureScratch
		f.Extract(&s, tc.text)
		if got := s.Dense[DenseQuestion] == 1; got != tc.want {
			t.Errorf("question(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

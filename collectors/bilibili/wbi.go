package bilibili

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"lookout/collectors/httpx"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WBI request signing, used by getDanmuInfo and the
// comment/search endpoints. The keys come from /x/web-interface/nav and
// rotate about daily.

// biliMixinKeyEncTab is MIXIN_KEY_ENC_TAB; only the first 32 entries matter
// because the mixin key is truncated to 32 characters.
var biliMixinKeyEncTab = [64]int{
	46, 47, 18, 2, 53, 8, 23, 32, 15, 50, 10, 31, 58, 3, 45, 35,
	27, 43, 5, 49, 33, 9, 42, 19, 29, 28, 14, 39, 12, 38, 41, 13,
	37, 48, 7, 16, 24, 55, 40, 61, 26, 17, 0, 1, 60, 51, 30, 4,
	22, 25, 54, 21, 56, 59, 6, 63, 57, 62, 11, 36, 20, 34, 44, 52,
}

// WBIDefaultTTL is how long nav keys are trusted (blivedm: 11h59m30s).
const WBIDefaultTTL = 12 * time.Hour

// MixinKey derives the 32-character mixin key from img_key and
// sub_key. It returns "" when the keys are too short to index.
func MixinKey(imgKey, subKey string) string {
	raw := imgKey + subKey
	var b [32]byte
	for i := range b {
		j := biliMixinKeyEncTab[i]
		if j >= len(raw) {
			return ""
		}
		b[i] = raw[j]
	}
	return string(b[:])
}

// WBIKeyFromURL returns the file-name stem of a wbi_img URL
// ("https://i0.hdslb.com/bfs/wbi/7cd0….png" → "7cd0…").
func WBIKeyFromURL(u string) string {
	if pu, err := url.Parse(u); err == nil {
		u = pu.Path
	}
	base := path.Base(u)
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	if base == "/" || base == "." {
		return ""
	}
	return base
}

// SignWBI returns the query string to send: params plus wts, sorted
// by key, values stripped of !'()*, percent-encoded (space as %20), and
// w_rid = md5(query + mixinKey).
func SignWBI(params url.Values, mixinKey string, wts int64) string {
	keys := make([]string, 0, len(params)+1)
	for k := range params {
		if k != "wts" && k != "w_rid" {
			keys = append(keys, k)
		}
	}
	keys = append(keys, "wts")
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		v := strconv.FormatInt(wts, 10)
		if k != "wts" {
			v = params.Get(k)
		}
		if sb.Len() > 0 {
			sb.WriteByte('&')
		}
		sb.WriteString(biliWBIEscape(k))
		sb.WriteByte('=')
		sb.WriteString(biliWBIEscape(biliWBIStrip(v)))
	}
	q := sb.String()
	sum := md5.Sum([]byte(q + mixinKey))
	return q + "&w_rid=" + hex.EncodeToString(sum[:])
}

func biliWBIStrip(v string) string {
	if !strings.ContainsAny(v, "!'()*") {
		return v
	}
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune("!'()*", r) {
			return -1
		}
		return r
	}, v)
}

// biliWBIEscape is encodeURIComponent: uppercase hex, space as %20.
func biliWBIEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// WBI caches the mixin key and signs requests. Fetch returns the
// current img_key and sub_key (from nav); it is called when the cache is
// empty, older than TTL, or invalidated after a -352. Safe for concurrent
// use.
type WBI struct {
	Fetch func(ctx context.Context) (imgKey, subKey string, err error)
	Clock httpx.Clock   // default httpx.RealClock
	TTL   time.Duration // default WBIDefaultTTL

	mu      sync.Mutex
	mixin   string
	fetched time.Time
}

// Sign returns the signed query string for params, fetching keys if needed.
func (w *WBI) Sign(ctx context.Context, params url.Values) (string, error) {
	mixin, now, err := w.key(ctx)
	if err != nil {
		return "", err
	}
	return SignWBI(params, mixin, now.Unix()), nil
}

// Invalidate drops the cached key so the next Sign fetches fresh keys.
func (w *WBI) Invalidate() {
	w.mu.Lock()
	w.mixin = ""
	w.mu.Unlock()
}

func (w *WBI) key(ctx context.Context) (string, time.Time, error) {
	clock := w.Clock
	if clock == nil {
		clock = httpx.RealClock
	}
	ttl := w.TTL
	if ttl <= 0 {
		ttl = WBIDefaultTTL
	}
	now := clock.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mixin != "" && now.Sub(w.fetched) < ttl {
		return w.mixin, now, nil
	}
	img, sub, err := w.Fetch(ctx)
	if err != nil {
		return "", now, err
	}
	mixin := MixinKey(img, sub)
	if mixin == "" {
		return "", now, &biliAPIError{api: "nav", code: 0, msg: "wbi_img keys missing or too short"}
	}
	w.mixin, w.fetched = mixin, now
	return mixin, now, nil
}

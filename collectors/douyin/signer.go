package douyin

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"lookout/collectors/httpx"
	"net/http"
	"net/url"
	"strings"
)

// DouyinSigner produces the `signature` query parameter of Douyin's webcast
// WebSocket URL from its X-MS-STUB (see DouyinSignatureStub).
//
// The real algorithm lives in Douyin's obfuscated browser SDK (webmssdk.js,
// frontierSign → X-Bogus) and is not public; lookout does NOT implement it.
// To watch real rooms, run a signer that executes that SDK (for example a
// small Node service around webmssdk.js) and point `signer_url` at it; see
// douyinHTTPSigner for the contract. douyinLocalSigner exists only for the
// loopback test server and the demo.
type DouyinSigner interface {
	Sign(ctx context.Context, stub string) (string, error)
}

// douyinStubKeys are the query keys whose values, in this order, make the
// signature stub (as DouyinLiveWebFetcher's liveMan.py
// generateSignature builds it).
var douyinStubKeys = []string{
	"live_id", "aid", "version_code", "webcast_sdk_version", "room_id", "sub_room_id", "sub_channel_id",
	"did_rule", "user_unique_id", "device_platform", "device_type", "ac", "identity",
}

// DouyinSignatureStub is X-MS-STUB: the MD5 (hex) of "k=v" pairs for the
// thirteen stub keys, comma-joined, missing keys with an empty value.
func DouyinSignatureStub(q url.Values) string {
	var b strings.Builder
	for i, k := range douyinStubKeys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(q.Get(k))
	}
	sum := md5.Sum([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// douyinHTTPSigner asks an external signer service. Contract:
//
//	POST <signer_url>
//	Content-Type: application/json
//	{"stub": "<X-MS-STUB hex>"}
//
//	200 OK
//	{"signature": "<value for the signature query parameter>"}
//
// (a text/plain body holding just the signature is accepted too). Any other
// status is an error; the signer's answer is never logged in full.
type douyinHTTPSigner struct {
	url  string
	http *httpx.Client
}

func (s *douyinHTTPSigner) Sign(ctx context.Context, stub string) (string, error) {
	body, _ := json.Marshal(map[string]string{"stub": stub})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("signer request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/plain")
	resp, err := s.http.Do(ctx, req)
	if err != nil {
		return "", fmt.Errorf("signer %s: %w", httpx.RedactURL(s.url), err)
	}
	if err := httpx.CheckStatus(resp, httpx.RealClock.Now()); err != nil {
		return "", fmt.Errorf("signer: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("signer %s: reading answer: %w", httpx.RedactURL(s.url), err)
	}
	raw = bytes.TrimSpace(raw)
	sig := string(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var out struct {
			Signature string `json:"signature"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return "", fmt.Errorf("signer %s: answer is not {\"signature\": …}: %w", httpx.RedactURL(s.url), err)
		}
		sig = out.Signature
	}
	if sig == "" || strings.ContainsAny(sig, " \r\n\t") {
		return "", fmt.Errorf("signer %s: empty or malformed signature in the answer", httpx.RedactURL(s.url))
	}
	return sig, nil
}

// douyinLocalSigner signs with HMAC-SHA256(key, stub), hex. This is a
// made-up scheme shared with the loopback test server
// (internal/loopback/douyin.go) so that tests and the demo exercise the
// whole signed-URL path, including rejection of a bad signature. Real
// Douyin servers do not accept it.
type douyinLocalSigner struct {
	key []byte
}

func (s douyinLocalSigner) Sign(_ context.Context, stub string) (string, error) {
	if len(s.key) == 0 {
		return "", errors.New("local test signer: no key")
	}
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(stub))
	return hex.EncodeToString(m.Sum(nil)), nil
}

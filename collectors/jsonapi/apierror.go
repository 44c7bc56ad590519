package jsonapi

import (
	"encoding/json"
	"fmt"
	"strings"
)

// APIError is an API's own error answer: HTTP 200 with a body such as
// Bilibili's {"code":-412,"message":"请求被拦截"} or {"errcode":40001,
// "errmsg":"invalid credential"} in place of the data. It is reported as
// reason api_error with the platform's code and message, not as shape
// drift.
type APIError struct {
	Field   string // the key that carried the code (code, errcode, ok, …)
	Code    string
	Message string
}

func (e *APIError) Error() string {
	msg := "API error " + e.Field
	if e.Code != "" {
		msg += "=" + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// apiCodeKeys are the top-level keys APIs put their status code in; 0 (or
// ok: 1/true) means success.
var apiCodeKeys = []string{"code", "errcode", "error_code", "err_code", "errno", "ret", "status_code"}

// apiMessageKeys carry the human-readable reason.
var apiMessageKeys = []string{"message", "msg", "errmsg", "error_msg", "error_message", "error_description", "error", "err_msg"}

// DetectAPIError reports whether doc is an error answer rather than data:
// a top-level object whose status code is non-zero, whose ok is 0 or
// false, or whose error is set while nothing else is. Callers ask only
// when the mapping found no items, so a payload that merely has a code
// beside its data is never mistaken for one.
func DetectAPIError(doc any) *APIError {
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil
	}
	msg := ""
	for _, k := range apiMessageKeys {
		if v, ok := obj[k]; ok {
			if s := strings.TrimSpace(jsonmapString(v)); s != "" {
				msg = s
				break
			}
			if m, ok := v.(map[string]any); ok { // {"error": {"code": 4, "message": "…"}}
				if inner := DetectAPIError(m); inner != nil {
					return inner
				}
				for _, mk := range apiMessageKeys {
					if s := jsonmapString(m[mk]); s != "" {
						return &APIError{Field: k, Code: jsonmapString(m["code"]), Message: s}
					}
				}
			}
		}
	}
	for _, k := range apiCodeKeys {
		v, ok := obj[k]
		if !ok {
			continue
		}
		code := strings.TrimSpace(jsonmapString(v))
		if code == "" || code == "0" || code == "200" || strings.EqualFold(code, "ok") || strings.EqualFold(code, "success") {
			return nil
		}
		if _, isNum := v.(json.Number); !isNum && k == "code" && msg == "" {
			return nil // a string code without a message is too weak a sign
		}
		return &APIError{Field: k, Code: code, Message: msg}
	}
	if v, ok := obj["ok"]; ok {
		if b, ok := jsonmapBool(v); ok && !b {
			return &APIError{Field: "ok", Code: jsonmapString(v), Message: msg}
		}
	}
	if e, ok := obj["error"]; ok && msg != "" && e != nil && len(obj) <= 3 {
		code := jsonmapString(e)
		if code == msg {
			code = ""
		}
		return &APIError{Field: "error", Code: code, Message: msg}
	}
	return nil
}

// TextMissing names the text mapping when every one of els (at least one,
// elements of doc)
// maps to an empty text: the field was renamed or moved, which is shape
// drift rather than a page of empty posts. "" otherwise.
func (m *Mapper) TextMissing(doc any, els []any) string {
	if m.text.IsZero() || len(els) == 0 {
		return ""
	}
	for _, el := range els {
		if m.str(m.text, doc, el) != "" {
			return ""
		}
	}
	return fmt.Sprintf("mapping.text %q", m.text.src)
}

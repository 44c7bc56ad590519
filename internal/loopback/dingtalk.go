package loopback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// DingTalkServer is a DingTalk custom robot on loopback: POST
// /robot/send?access_token=T[&timestamp=&sign=]. With a secret it checks
// the 加签 signature (HMAC-SHA256 of ts+"\n"+secret, ts in ms, within an
// hour of its clock) and answers errcode 310000 on a mismatch, like the
// real robot; more than 20 messages a minute get errcode 130101. Failures
// come with HTTP 200, as DingTalk does.
type DingTalkServer struct {
	sinkBase
	token, secret string
}

// DingTalk errcodes the server answers.
const (
	DingTalkCodeOK        = 0
	DingTalkCodeSecurity  = 310000 // sign mismatch, stale timestamp, keyword, IP
	DingTalkCodeThrottled = 130101 // send too fast, exceed 20 times per minute
	DingTalkCodeToken     = 300001 // token is not exist (commonly reported code)
	DingTalkCodeParam     = 40035  // missing or bad parameter (json)
	DingTalkCodeTooLong   = 460101 // message too long: over 20,000 bytes (commonly reported code)
)

// DingTalkMaxBody is the robot's limit on a message, in bytes.
const DingTalkMaxBody = 20000

// NewDingTalkServer starts a robot with the given access token; with a
// non-empty secret every request must be signed.
func NewDingTalkServer(token, secret string) *DingTalkServer {
	s := &DingTalkServer{token: token, secret: secret}
	s.init(http.HandlerFunc(s.serve), 20, time.Minute)
	return s
}

// WebhookURL is the robot's webhook address (without signature).
func (s *DingTalkServer) WebhookURL() string {
	return s.BaseURL() + "/robot/send?access_token=" + url.QueryEscape(s.token)
}

func dingtalkErr(code int, msg string) any {
	if msg == "" && code == DingTalkCodeThrottled {
		msg = "send too fast, exceed 20 times per minute"
	}
	return map[string]any{"errcode": code, "errmsg": msg}
}

func (s *DingTalkServer) serve(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.faultNow(); ok {
		s.play(w, f, dingtalkErr)
		return
	}
	body, _ := sinkReadBody(r, 1<<20)
	reject := func(code int, msg string) {
		s.record(r, body, code)
		sinkWriteJSON(w, dingtalkErr(code, msg))
	}
	q := r.URL.Query()
	if r.Method != http.MethodPost || r.URL.Path != "/robot/send" || q.Get("access_token") != s.token {
		reject(DingTalkCodeToken, "token is not exist")
		return
	}
	if s.secret != "" {
		ts, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
		d := s.clock().Sub(time.UnixMilli(ts))
		// Go's query parser has already URL-decoded sign.
		if err != nil || d > time.Hour || d < -time.Hour || !hmac.Equal([]byte(q.Get("sign")), []byte(dingtalkServerSign(s.secret, ts))) {
			reject(DingTalkCodeSecurity, "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]")
			return
		}
	}
	if !sinkIsJSON(r) {
		reject(DingTalkCodeParam, "缺少参数 json")
		return
	}
	if len(body) > DingTalkMaxBody {
		reject(DingTalkCodeTooLong, "message too long, exceed 20000 bytes")
		return
	}
	var msg struct {
		MsgType  string                    `json:"msgtype"`
		Text     *struct{ Content string } `json:"text"`
		Markdown *struct {
			Title string `json:"title"`
			Text  string `json:"text"`
		} `json:"markdown"`
		ActionCard *struct {
			Title       string `json:"title"`
			Text        string `json:"text"`
			SingleTitle string `json:"singleTitle"`
			SingleURL   string `json:"singleURL"`
			Btns        []any  `json:"btns"`
		} `json:"actionCard"`
		Link     json.RawMessage `json:"link"`
		FeedCard json.RawMessage `json:"feedCard"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		reject(DingTalkCodeParam, "缺少参数 json")
		return
	}
	ok := false
	switch msg.MsgType {
	case "text":
		ok = msg.Text != nil && msg.Text.Content != ""
	case "markdown":
		ok = msg.Markdown != nil && msg.Markdown.Title != "" && msg.Markdown.Text != ""
	case "actionCard":
		ok = msg.ActionCard != nil && msg.ActionCard.Title != "" && msg.ActionCard.Text != "" &&
			(msg.ActionCard.SingleURL != "" && msg.ActionCard.SingleTitle != "" || len(msg.ActionCard.Btns) > 0)
	case "link":
		ok = len(msg.Link) > 0
	case "feedCard":
		ok = len(msg.FeedCard) > 0
	}
	if !ok {
		reject(DingTalkCodeParam, "缺少参数 "+msg.MsgType)
		return
	}
	if s.overLimit() {
		reject(DingTalkCodeThrottled, "")
		return
	}
	s.record(r, body, 0)
	sinkWriteJSON(w, dingtalkErr(0, "ok"))
}

// dingtalkServerSign is the robot's own computation of the signature.
func dingtalkServerSign(secret string, tsMillis int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(tsMillis, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

package jsonapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"lookout/collectors"
	"lookout/collectors/collectortest"
	"lookout/collectors/poll"
	"lookout/item"
)

// bodyServer answers every API request with the body of the current step.
func bodyServer(t *testing.T, bodies ...string) (*httptest.Server, *atomic.Int32) {
	var step atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			http.NotFound(w, r)
			return
		}
		i := min(int(step.Load()), len(bodies)-1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, bodies[i])
	}))
	t.Cleanup(srv.Close)
	return srv, &step
}

const biliMapping = `mapping:
  items: data.replies[*]
  id: rpid
  text: content.message
  author: member.uname
  time: ctime
  value: like
`

// An API's error answer (HTTP 200, code -412) is reason api_error naming
// the code and message, not shape drift with a hint about selectors.
func TestJSONAPIErrorBodyIsAnAPIError(t *testing.T) {
	srv, step := bodyServer(t,
		`{"code":0,"message":"0","data":{"replies":[{"rpid":1,"content":{"message":"好"},"member":{"uname":"a"},"ctime":1732000000,"like":3}]}}`,
		`{"code":-412,"message":"请求被拦截","ttl":1}`)
	state := collectors.NewMemState()
	env, logs := collectortest.PollEnvLogs(t, collectortest.NewInstantClock(), state)
	c := jsonapiNew(t, env, fmt.Sprintf("id: bili\nkind: json_api\nurl: %s/x/v2/reply\n%s", srv.URL, biliMapping))
	var sink collectortest.Sink
	if err := c.poll(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	step.Store(1)
	err := c.poll(context.Background(), sink.Emit)
	if poll.Reason(err) != "api_error" || !strings.Contains(err.Error(), "code=-412") || !strings.Contains(err.Error(), "请求被拦截") {
		t.Fatalf("err %v (reason %s), want api_error with the code and message", err, poll.Reason(err))
	}
	if strings.Contains(logs.String(), "shape_drift") || c.env.Health.Status().Reason == "shape_drift" {
		t.Errorf("an API error was reported as shape drift:\n%s", logs.String())
	}
	if v, _, _ := state.GetState(context.Background(), "bili", "shape_drift"); v != "" {
		t.Errorf("shape_drift state %q", v)
	}
}

func TestDetectAPIError(t *testing.T) {
	for body, want := range map[string]string{
		`{"code":-412,"message":"请求被拦截"}`:                               "API error code=-412: 请求被拦截",
		`{"ok":0,"msg":"请先登录"}`:                                         "API error ok=0: 请先登录",
		`{"errcode":40001,"errmsg":"invalid credential"}`:               "API error errcode=40001: invalid credential",
		`{"error":{"code":429,"message":"slow down"}}`:                  "API error code=429: slow down",
		`{"error":"invalid_token","error_description":"token expired"}`: "API error error=invalid_token: token expired",
		`{"code":0,"message":"0","data":{}}`:                            "",
		`{"data":{"items":[]}}`:                                         "",
		`{"status":"ok","items":[]}`:                                    "",
		`[]`:                                                            "",
	} {
		doc, err := DecodeJSON([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if e := DetectAPIError(doc); e != nil {
			got = e.Error()
		}
		if got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
	}
}

// A renamed text field: items arrive without text. That is shape drift
// naming the field, not posts stored with NULL text and no word.
func TestJSONAPIRenamedTextFieldIsShapeDrift(t *testing.T) {
	srv, step := bodyServer(t,
		`{"code":0,"data":{"replies":[{"rpid":1,"content":{"message":"好"},"ctime":1732000000}]}}`,
		`{"code":0,"data":{"replies":[{"rpid":3,"content":{"text":"差"},"ctime":1732000200},{"rpid":2,"content":{"text":"差"},"ctime":1732000100}]}}`,
		`{"code":0,"data":{"replies":[{"rpid":4,"content":{"message":"回来了"},"ctime":1732000300}]}}`)
	env, logs := collectortest.PollEnvLogs(t, collectortest.NewInstantClock(), nil)
	c := jsonapiNew(t, env, fmt.Sprintf("id: bili\nkind: json_api\nurl: %s/x\n%s", srv.URL, biliMapping))
	ctx := context.Background()
	var sink collectortest.Sink
	for i := range 3 {
		step.Store(int32(i))
		if err := c.poll(ctx, sink.Emit); err != nil {
			t.Fatal(err)
		}
		st := c.env.Health.Status()
		switch i {
		case 1:
			if st.Reason != "shape_drift" || !strings.Contains(st.Detail, `mapping.text "content.message"`) {
				t.Errorf("renamed field: health %s %q, want shape_drift naming mapping.text", st.Reason, st.Detail)
			}
			if !strings.Contains(logs.String(), `mapping.text \"content.message\" empty`) {
				t.Errorf("log does not name the field:\n%s", logs.String())
			}
		case 2:
			if st.Reason != "" {
				t.Errorf("after the field came back: %s %q", st.Reason, st.Detail)
			}
		}
	}
	if got := collectortest.CounterValue(env.Metrics.Errors.WithLabelValues("bili", "shape_drift")); got != 1 {
		t.Errorf("shape_drift count %v, want 1", got)
	}
	if ids := strings.Join(sink.IDs(), ","); ids != "1,2,3,4" {
		t.Errorf("items %s: the textless ones are kept too", ids)
	}
}

// 9006.0 and 9006 are one id; like: 0 is a value of 0, not an absent one.
func TestJSONAPINumericIdentity(t *testing.T) {
	m, err := NewMapper(Mapping{Items: "data[*]", ID: "id", Text: "t", AuthorID: "uid", Value: "like"})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := DecodeJSON([]byte(`{"data":[{"id":9006,"uid":7.0,"t":"a","like":0},{"id":9006.0,"t":"a"},{"id":9.006e3,"t":"a"},{"id":"9006.0","t":"a"},{"id":9006.5,"t":"a"},{"id":1e400,"t":"a"}]}`))
	els, _ := m.Elements(doc)
	var ids []string
	for _, el := range els {
		r, _ := m.Record(doc, el)
		ids = append(ids, r.ID)
	}
	if got := strings.Join(ids, ","); got != "9006,9006,9006,9006.0,9006.5,1e400" {
		t.Errorf("ids %s", got)
	}
	r, _ := m.Record(doc, els[0])
	if r.AuthorID != "7" {
		t.Errorf("author id %q", r.AuthorID)
	}
	its := m.Items(r, item.Item{Source: "s"}, r.TS)
	if len(its) != 1 || its[0].Value != 0 || !its[0].HasValue {
		t.Errorf("like: 0 → %+v, want Value 0 with HasValue", its)
	}
	r2, _ := m.Record(doc, els[1])
	if its := m.Items(r2, item.Item{Source: "s"}, r2.TS); its[0].HasValue {
		t.Error("no like field, yet HasValue")
	}
}

func FuzzDetectAPIError(f *testing.F) {
	for _, s := range []string{`{"code":-412,"message":"x"}`, `{"ok":0}`, `{"error":{"error":{}}}`, `{"data":[]}`, `1`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := DecodeJSON(b)
		if err != nil {
			return
		}
		if e := DetectAPIError(doc); e != nil && e.Error() == "" {
			t.Fatal("empty error text")
		}
	})
}

package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"lookout/config"
	"lookout/internal/loopback"
)

// A streaming source is watched for TryOptions.For and what it sent in
// that time comes back; nothing is stored because Try has no store.
func TestTryStreamIsBounded(t *testing.T) {
	srv := loopback.NewWSJSONServer()
	defer srv.Close()
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/feed"
	src, err := config.NewSourceConfig(fmt.Sprintf("id: chat\nkind: websocket_json\nurl: %s\nlabels: {team: live}\nmapping: {items: \"data[*]\", id: id, text: t, kind: chat}\n", wsURL))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if srv.WaitReady(1, 5*time.Second) {
			srv.Send(`{"data":[{"id":1.0,"t":"主播好"},{"id":2,"t":"来了"}]}`)
		}
	}()
	const window = 1500 * time.Millisecond
	res, err := Try(context.Background(), src, TryOptions{For: window})
	if err != nil {
		t.Fatal(err)
	}
	if res.Polled {
		t.Error("a stream reported as one poll")
	}
	if res.Elapsed < window-100*time.Millisecond || res.Elapsed > window+3*time.Second {
		t.Errorf("ran %v, want about %v", res.Elapsed, window)
	}
	var got []string
	for _, it := range res.Items {
		got = append(got, it.ID+"="+it.Text+"/"+it.Labels["team"])
	}
	if strings.Join(got, ",") != "1=主播好/live,2=来了/live" {
		t.Errorf("items %v", got)
	}
}

// A poller stops after its first poll, long before For.
func TestTryPollerStopsAfterOnePoll(t *testing.T) {
	srv := loopback.NewJSONAPIServer()
	defer srv.Close()
	srv.Add(loopback.JSONAPIPost{ID: "p1", Body: "好", Author: "a", Created: time.Now()})
	src, err := TrySource("json_api", srv.URL+"/api/posts", `{mapping: {items: "data.items[*]", id: id, text: body, time: created_at}}`)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Try(context.Background(), src, TryOptions{For: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Polled || res.Elapsed > 30*time.Second || len(res.Items) != 1 || res.Items[0].ID != "p1" {
		t.Errorf("polled %v in %v, items %+v", res.Polled, res.Elapsed, res.Items)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

package alerts

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lookout/config"
	"lookout/internal/loopback"
	"lookout/store"
)

// Environment of the helper process TestDeliveryKill9MidDrain starts.
const (
	deliveryKillEnvDB  = "LOOKOUT_DELIVERY_KILL_DB"
	deliveryKillEnvURL = "LOOKOUT_DELIVERY_KILL_URL"
	// deliveryKillEnvClaim, when set, makes the helper one of several
	// processes sending from the file, with this claim timeout.
	deliveryKillEnvClaim = "LOOKOUT_DELIVERY_KILL_CLAIM"
)

func deliveryKillConfig(url string) *config.Config {
	return &config.Config{
		Route:     config.RouteConfig{Receiver: "hook", GroupWait: config.Duration(time.Millisecond), GroupBy: []string{"..."}},
		Receivers: []config.ReceiverConfig{deliveryWebhookReceiver("hook", url)},
	}
}

// TestDeliveryKillChild is the daemon's delivery side in a process of its
// own; TestDeliveryKill9MidDrain runs it and kills it with SIGKILL.
func TestDeliveryKillChild(t *testing.T) {
	path := os.Getenv(deliveryKillEnvDB)
	if path == "" {
		t.Skip("helper process for TestDeliveryKill9MidDrain; runs only when started by it")
	}
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	opts := DeliveryOptions{}
	if c := os.Getenv(deliveryKillEnvClaim); c != "" {
		if opts.ClaimTimeout, err = time.ParseDuration(c); err != nil {
			t.Fatal(err)
		}
		opts.SharedOutbox = true
	}
	d, err := NewDelivery(deliveryKillConfig(os.Getenv(deliveryKillEnvURL)), st, deliveryFast(opts))
	if err != nil {
		t.Fatal(err)
	}
	_ = d.Run(context.Background()) // until killed
}

// Two processes send from one SQLite file at once; one is killed with
// SIGKILL between the receiver accepting its message and recording it
// sent. The other, running all along, sends every other event once (it
// never takes a row the first one claimed while that claim is live) and
// the killed message once more after its claim expired, with the same
// Idempotency-Key.
func TestDeliveryKill9Shared(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a helper process")
	}
	const claim = 2 * time.Second
	st, path := deliveryTestStore(t)
	srv := loopback.NewWebhookServer()
	defer srv.Close()
	cfg := deliveryKillConfig(srv.URL())
	opts := DeliveryOptions{SharedOutbox: true, ClaimTimeout: claim,
		// The helper sends at 10 a second; this process more slowly, so
		// that the helper has messages to send when it is killed.
		RateLimits: map[string]ReceiverRate{"hook": {Limit: 4, Burst: 1}}}
	d, err := NewDelivery(cfg, st, deliveryFast(opts))
	if err != nil {
		t.Fatal(err)
	}
	const events = 30
	var want []string
	for i := range events {
		ev := deliveryTestEvent(fmt.Sprintf("s%02d", i), "A", 2, Yellow, Firing)
		want = append(want, ev.ID)
		if err := d.Publish(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeliveryKillChild$", "-test.v")
	cmd.Env = append(os.Environ(), deliveryKillEnvDB+"="+path, deliveryKillEnvURL+"="+srv.BaseURL()+"/helper",
		deliveryKillEnvClaim+"="+claim.String())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	var (
		killedKey string
		killedAt  time.Time
		killOnce  sync.Once
		killed    = make(chan struct{})
		procMu    sync.Mutex
		proc      *os.Process
	)
	srv.OnAccept(func(m loopback.SinkMessage) {
		if m.Path != "/helper" {
			return
		}
		killOnce.Do(func() {
			killedKey, killedAt = m.Header.Get("Idempotency-Key"), m.At
			procMu.Lock()
			p := proc
			procMu.Unlock()
			_ = p.Kill() // SIGKILL before the helper hears "200 ok"
			close(killed)
		})
	})
	procMu.Lock()
	if err := cmd.Start(); err != nil {
		procMu.Unlock()
		t.Fatal(err)
	}
	proc = cmd.Process
	procMu.Unlock()
	stop := deliveryRun(t, d)
	select {
	case <-killed:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the helper never sent a message; its output:\n%s", out.String())
	}
	_ = cmd.Wait()
	deliveryWaitFor(t, "every row sent", 30*time.Second, func() bool { return deliveryOutboxStates(t, st)[store.OutboxSent] == events })
	time.Sleep(200 * time.Millisecond) // a second send of any row would arrive by now
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := map[string][]loopback.SinkMessage{}
	for _, m := range srv.Messages() {
		k := m.Header.Get("Idempotency-Key")
		got[k] = append(got[k], m)
	}
	for _, id := range want { // one event per message: the key is the event id
		wantN := 1
		if id == killedKey {
			wantN = 2 // the documented at-most-once resend
		}
		if len(got[id]) != wantN {
			t.Errorf("event %s delivered %d times, want %d", id, len(got[id]), wantN)
		}
	}
	if ms := got[killedKey]; len(ms) == 2 {
		if ms[1].Path != "/hook" || ms[1].At.Sub(killedAt) < claim/2 {
			t.Errorf("the killed message went out again from %s %v after the kill, want from the other process after its claim (%v) expired",
				ms[1].Path, ms[1].At.Sub(killedAt), claim)
		}
	}
	helper := 0
	for _, m := range srv.Messages() {
		if m.Path == "/helper" {
			helper++
		}
	}
	t.Logf("%d events: the helper sent %d messages before it was killed, the other process %d; the killed one was resent %v after the kill",
		events, helper, len(srv.Messages())-helper, got[killedKey][len(got[killedKey])-1].At.Sub(killedAt).Round(10*time.Millisecond))
}

// A real kill -9 of a process mid-drain, between the sink accepting a
// message and the process marking it sent, then a restart on the same
// file: every event arrives, and only the message in flight arrives twice,
// with the same Idempotency-Key.
func TestDeliveryKill9MidDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a helper process")
	}
	st, path := deliveryTestStore(t)
	srv := loopback.NewWebhookServer()
	defer srv.Close()
	cfg := deliveryKillConfig(srv.URL())
	d, err := NewDelivery(cfg, st, deliveryFast(DeliveryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	const events = 12
	var want []string
	for i := range events {
		ev := deliveryTestEvent(fmt.Sprintf("k%02d", i), "A", 2, Yellow, Firing)
		want = append(want, ev.ID)
		if err := d.Publish(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestDeliveryKillChild$", "-test.v")
	cmd.Env = append(os.Environ(), deliveryKillEnvDB+"="+path, deliveryKillEnvURL+"="+srv.URL())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	var (
		accepted  atomic.Int32
		killedKey string
		killOnce  sync.Once
		killed    = make(chan struct{})
		procMu    sync.Mutex
		proc      *os.Process // published to the handler under procMu
	)
	srv.OnAccept(func(m loopback.SinkMessage) {
		if accepted.Add(1) == 5 {
			killOnce.Do(func() {
				killedKey = m.Header.Get("Idempotency-Key")
				procMu.Lock()
				p := proc
				procMu.Unlock()
				_ = p.Kill() // SIGKILL before the child hears "200 ok"
				close(killed)
			})
		}
	})
	procMu.Lock()
	if err := cmd.Start(); err != nil {
		procMu.Unlock()
		t.Fatal(err)
	}
	proc = cmd.Process
	procMu.Unlock()
	select {
	case <-killed:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child never reached the 5th message; its output:\n%s", out.String())
	}
	_ = cmd.Wait()
	srv.OnAccept(nil)

	// The killed message is still 'sending' in the file.
	rows, err := st.OutboxRows(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, r := range rows {
		states[r.EventID] = r.State
	}
	if states[killedKey] != store.OutboxSending {
		t.Fatalf("killed message %s is %q in the outbox, want sending; child output:\n%s", killedKey, states[killedKey], out.String())
	}

	// Restart.
	d2, err := NewDelivery(cfg, st, deliveryFast(DeliveryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	stop := deliveryRun(t, d2)
	deliveryWaitFor(t, "drain after restart", 15*time.Second, func() bool { return deliveryOutboxStates(t, st)[store.OutboxSent] == events })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ids, _, keys := deliveryWebhookEvents(t, srv)
	count := map[string]int{}
	for _, id := range ids {
		count[id]++
	}
	for _, id := range want {
		wantN := 1
		if id == killedKey {
			wantN = 2 // the documented at-most-once resend
		}
		if count[id] != wantN {
			t.Errorf("event %s delivered %d times, want %d", id, count[id], wantN)
		}
	}
	if len(keys) != events+1 {
		t.Errorf("%d messages, want %d (one resend)", len(keys), events+1)
	}
}

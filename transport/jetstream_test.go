package transport

import (
	"context"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"lookout/config"
	"lookout/internal/embednats"
	"lookout/item"
)

func startNATS(t *testing.T) string {
	t.Helper()
	ns, err := embednats.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	return ns.URL()
}

func dial(t *testing.T, url string, reg prometheus.Registerer) *Conn {
	t.Helper()
	c, err := Connect(context.Background(), config.NATSConfig{URL: url, Stream: "TEST_ITEMS", Partitions: 4}, "test", nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestParsePartitions(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		bad  bool
	}{
		{in: "", want: []int{0, 1, 2, 3}},
		{in: "all", want: []int{0, 1, 2, 3}},
		{in: "2", want: []int{2}},
		{in: "0-1,3", want: []int{0, 1, 3}},
		{in: "1,1-2", want: []int{1, 2}},
		{in: "4", bad: true},
		{in: "2-1", bad: true},
		{in: "x", bad: true},
		{in: "-1", bad: true},
	} {
		got, err := ParsePartitions(tc.in, 4)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: got %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// A resent item is kept once by the stream; what a consumer receives is
// the item as published; a message that is not an item is counted and
// terminated, and consuming goes on.
func TestPublishDedupeConsume(t *testing.T) {
	url := startNATS(t)
	reg := prometheus.NewRegistry()
	c := dial(t, url, reg)
	ctx := context.Background()
	it := item.Item{Source: "bili", Platform: "bilibili", Kind: item.KindChat, Room: "42", ID: "m1", Author: "viewer",
		Text: "假货", TS: time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC), Labels: map[string]string{"team": "a"},
		Score: item.Score{Scored: true, Label: item.Negative, Value: -0.8}}
	p := c.NewPublisher(PublisherOptions{Window: 8, BatchItems: 1})
	for range 3 {
		if err := p.Publish(ctx, &it); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	part := Partition(it.Source, it.Room, 4)
	// Garbage on the same subject, then a second item behind it.
	if _, err := c.js.Publish(ctx, Subject(&it, 4), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	it2 := it
	it2.ID = "m2"
	if err := p.Publish(ctx, &it2); err != nil {
		t.Fatal(err)
	}
	if err := p.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ := c.js.Stream(ctx, "TEST_ITEMS")
	info, _ := st.Info(ctx)
	if info.State.Msgs != 3 {
		t.Errorf("stream holds %d messages, want 3 (one item once, the garbage, the second item)", info.State.Msgs)
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var got []item.Item
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(cctx, part, ConsumeOptions{}, func(_ context.Context, d Delivery) error {
			mu.Lock()
			got = append(got, d.Items...)
			n := len(got)
			mu.Unlock()
			if err := d.Msg.Ack(); err != nil {
				t.Error(err)
			}
			if n == 2 {
				cancel()
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("consumer did not get both items")
	}
	if len(got) != 2 || !reflect.DeepEqual(got[0], it) || got[1].ID != "m2" {
		t.Errorf("consumed %+v\nwant %+v then m2", got, it)
	}
	if n := testutil.ToFloat64(c.m.badMessages.WithLabelValues(strconv.Itoa(part))); n != 1 {
		t.Errorf("bad messages counted %v, want 1", n)
	}
}

// The collectors' state outlives the connection that wrote it, whole per
// source.
func TestStateStoreAcrossConnections(t *testing.T) {
	url := startNATS(t)
	ctx := context.Background()
	s1, err := dial(t, url, nil).NewStateStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s1.GetState(ctx, "feed/1", "cursor"); ok || err != nil {
		t.Fatalf("empty bucket: ok %v err %v", ok, err)
	}
	if err := s1.PutStates(ctx, "feed/1", map[string]string{"cursor": "10", "etag": `"x"`}); err != nil {
		t.Fatal(err)
	}
	if err := s1.PutStates(ctx, "feed/1", map[string]string{"cursor": "20"}); err != nil {
		t.Fatal(err)
	}
	s2, err := dial(t, url, nil).NewStateStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"cursor": "20", "etag": `"x"`} {
		if v, ok, err := s2.GetState(ctx, "feed/1", k); v != want || !ok || err != nil {
			t.Errorf("%s = %q, %v, %v; want %q", k, v, ok, err, want)
		}
	}
}

// Two processors share four partitions two and two; when one stops
// renewing (it died), the other owns all four once the lease ran out.
func TestAssignerShareAndTakeOver(t *testing.T) {
	url := startNATS(t)
	ctx := context.Background()
	var mu sync.Mutex
	gains := map[string][][]int{} // what each processor won, step by step
	run := func(id string) (*Assigner, context.CancelFunc, chan struct{}) {
		a, err := dial(t, url, nil).NewAssigner(ctx, id, 1200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		actx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			a.Run(actx, func(ps []int) {
				mu.Lock()
				gains[id] = append(gains[id], slices.Clone(ps))
				mu.Unlock()
			}, func(int) {})
		}()
		return a, cancel, done
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	a, stopA, doneA := run("a")
	wait("a owning all 4", func() bool { return len(a.Owned()) == 4 })
	mu.Lock()
	if want := [][]int{{0, 1, 2, 3}}; !reflect.DeepEqual(gains["a"], want) {
		t.Errorf("a won %v, want %v: every partition of a step handed over at once", gains["a"], want)
	}
	mu.Unlock()
	b, stopB, doneB := run("b")
	defer func() { stopB(); <-doneB }()
	wait("2 and 2", func() bool { return len(a.Owned()) == 2 && len(b.Owned()) == 2 })
	for _, p := range a.Owned() {
		if slices.Contains(b.Owned(), p) {
			t.Fatalf("partition %d owned by both", p)
		}
	}
	stopA() // no Release: as if a died
	<-doneA
	began := time.Now()
	wait("b owning all 4", func() bool { return len(b.Owned()) == 4 })
	if d := time.Since(began); d < 600*time.Millisecond {
		t.Errorf("b took over after %v, before a's lease could run out", d)
	}
	c := dial(t, url, nil)
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st {
		if p.Owner != "b" {
			t.Errorf("partition %d owned by %q, want b", p.Partition, p.Owner)
		}
	}
}

// Acknowledgements go only up to the first delivery whose item is not
// committed: committing the second and third of three acknowledges
// nothing; committing the first then acknowledges all three at once.
func TestAcksUpToFirstUncommitted(t *testing.T) {
	url := startNATS(t)
	c := dial(t, url, nil)
	ctx := context.Background()
	p := c.NewPublisher(PublisherOptions{Window: 8, BatchItems: 1})
	var items []item.Item
	for i := range 3 {
		it := item.Item{Source: "bili", Kind: item.KindChat, Room: "7", ID: "m" + strconv.Itoa(i), Text: "x"}
		items = append(items, it)
		if err := p.Publish(ctx, &it); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	part := Partition("bili", "7", 4)
	acks := c.NewAcks()
	cctx, cancel := context.WithCancel(ctx)
	got := 0
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(cctx, part, ConsumeOptions{}, func(_ context.Context, d Delivery) error {
			acks.Add(d)
			if got++; got == 3 {
				cancel()
			}
			return nil
		})
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	floor := func() (uint64, int) {
		t.Helper()
		cons, err := c.js.Consumer(ctx, "TEST_ITEMS", ConsumerName(part))
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.AckFloor.Stream, info.NumAckPending
	}
	acks.Committed(items[1:])
	c.nc.Flush()
	if f, pending := floor(); f != 0 || pending != 3 || acks.Waiting() != 3 {
		t.Errorf("after committing 2 and 3: ack floor %d, %d pending on the server, %d waiting here; want 0, 3, 3", f, pending, acks.Waiting())
	}
	acks.Committed(items[:1])
	c.nc.Flush()
	if f, pending := floor(); f != 3 || pending != 0 || acks.Waiting() != 0 {
		t.Errorf("after committing 1: ack floor %d, %d pending, %d waiting; want 3, 0, 0", f, pending, acks.Waiting())
	}
}

// A batch is one message, acknowledged only once every one of its items
// is committed; a redelivery of it while it waits changes nothing; the
// same batch sent again is kept once by the stream.
func TestBatchAckedAfterLastItem(t *testing.T) {
	url := startNATS(t)
	c := dial(t, url, nil)
	ctx := context.Background()
	p := c.NewPublisher(PublisherOptions{Window: 8, BatchItems: 3})
	var items []item.Item
	for i := range 4 {
		it := item.Item{Source: "bili", Kind: item.KindChat, Room: "7", ID: "m" + strconv.Itoa(i), Text: "x"}
		items = append(items, it)
		if err := p.Publish(ctx, &it); err != nil {
			t.Fatal(err)
		}
	}
	if p.Buffered() != 1 {
		t.Fatalf("%d items buffered, want 1 (the first 3 left as a full batch)", p.Buffered())
	}
	if err := p.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	// The first batch again, with its id: the stream drops it.
	again, err := EncodeBatch(items[:3])
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(Subject(&items[0], 4))
	msg.Data = again
	msg.Header.Set(jetstream.MsgIDHeader, BatchMsgID(MsgID(&items[0]), MsgID(&items[2]), 3))
	if ack, err := c.js.PublishMsg(ctx, msg); err != nil || !ack.Duplicate {
		t.Fatalf("batch sent again: %+v, %v; want a duplicate", ack, err)
	}
	part := Partition("bili", "7", 4)
	acks := c.NewAcks()
	cctx, cancel := context.WithCancel(ctx)
	var got []item.Item
	var first Delivery
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(cctx, part, ConsumeOptions{}, func(_ context.Context, d Delivery) error {
			acks.Add(d)
			if len(got) == 0 {
				first = d
			}
			if got = append(got, d.Items...); len(got) == 4 {
				cancel()
			}
			return nil
		})
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || !reflect.DeepEqual(got, items) {
		t.Fatalf("consumed %+v, want %+v", got, items)
	}
	if len(first.Items) != 3 {
		t.Fatalf("first message carried %d items, want 3", len(first.Items))
	}
	acks.Add(first) // a redelivery while its items wait
	floor := func() uint64 {
		t.Helper()
		cons, err := c.js.Consumer(ctx, "TEST_ITEMS", ConsumerName(part))
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.AckFloor.Stream
	}
	acks.Committed([]item.Item{items[0], items[1], items[3]})
	c.nc.Flush()
	if f, w := floor(), acks.Waiting(); f != 0 || w != 2 {
		t.Errorf("after committing all but the batch's last item: ack floor %d, %d waiting; want 0, 2", f, w)
	}
	acks.Committed(items[2:3])
	c.nc.Flush()
	if f, w := floor(), acks.Waiting(); f != 2 || w != 0 {
		t.Errorf("after committing the batch's last item: ack floor %d, %d waiting; want 2, 0", f, w)
	}
}

// Status reads every partition's lag from one listing of the consumers: a
// partition with a consumer shows what it has not delivered, one without
// the messages on its subject, and consumers of other readers are left
// out.
func TestStatusLags(t *testing.T) {
	url := startNATS(t)
	c := dial(t, url, nil)
	ctx := context.Background()
	p := c.NewPublisher(PublisherOptions{Window: 8, BatchItems: 1})
	rooms := map[int]string{}
	for r := 0; len(rooms) < 2; r++ {
		room := strconv.Itoa(r)
		if _, ok := rooms[Partition("bili", room, 4)]; !ok {
			rooms[Partition("bili", room, 4)] = room
		}
	}
	var parts []int
	for part := range rooms {
		parts = append(parts, part)
	}
	slices.Sort(parts)
	withConsumer, without := parts[0], parts[1]
	for part, n := range map[int]int{withConsumer: 3, without: 2} {
		for i := range n {
			it := item.Item{Source: "bili", Kind: item.KindChat, Room: rooms[part], ID: rooms[part] + "-" + strconv.Itoa(i)}
			if err := p.Publish(ctx, &it); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.takeOver(ctx, withConsumer, ConsumeOptions{AckWait: time.Minute, MaxAckPending: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.js.CreateConsumer(ctx, "TEST_ITEMS", jetstream.ConsumerConfig{Durable: "analytics", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 4 {
		t.Fatalf("%d partitions, want 4", len(st))
	}
	for _, s := range st {
		want := map[int]uint64{withConsumer: 3, without: 2}[s.Partition]
		if s.Partition != slices.Index(st, s) || s.Lag != want || s.Owner != "" {
			t.Errorf("partition %d: lag %d, owner %q; want lag %d, no owner", s.Partition, s.Lag, s.Owner, want)
		}
	}
}

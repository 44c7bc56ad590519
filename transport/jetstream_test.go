package transport

import (
	"context"
	"errors"
	"fmt"
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

// acksArrive flushes the connection and gives the server a moment to
// apply the acknowledgements sent (it applies them asynchronously), then
// reports whether ok holds, polling for up to two seconds.
func acksArrive(c *Conn, ok func() bool) bool {
	c.nc.Flush()
	time.Sleep(50 * time.Millisecond)
	for deadline := time.Now().Add(2 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
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
		done <- c.Consume(cctx, "lookout-test-1", []int{part}, ConsumeOptions{}, func(_ context.Context, d Delivery) error {
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
			}, func([]int) {})
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
	items := publishChat(t, p, "m0", "m1", "m2")
	part := Partition("bili", "7", 4)
	acks := c.NewAcks()
	cctx, cancel := context.WithCancel(ctx)
	// delivered are the items as handed on, numbered with their delivery.
	var delivered []item.Item
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(cctx, "lookout-test-1", []int{part}, ConsumeOptions{}, func(_ context.Context, d Delivery) error {
			acks.Add(d)
			if delivered = append(delivered, d.Items...); len(delivered) == 3 {
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
		info := consumerInfo(t, c, "lookout-test-1")
		return info.AckFloor.Stream, info.NumAckPending
	}
	// The items as published carry no delivery: their commit settles
	// nothing.
	acks.Committed(items)
	acks.Committed(delivered[1:])
	acksArrive(c, func() bool { return true })
	if f, pending := floor(); f != 0 || pending != 3 || acks.Waiting() != 3 {
		t.Errorf("after committing 2 and 3: ack floor %d, %d pending on the server, %d waiting here; want 0, 3, 3", f, pending, acks.Waiting())
	}
	acks.Committed(delivered[:1])
	acksArrive(c, func() bool { f, pending := floor(); return f == 3 && pending == 0 })
	if f, pending := floor(); f != 3 || pending != 0 || acks.Waiting() != 0 {
		t.Errorf("after committing 1: ack floor %d, %d pending, %d waiting; want 3, 0, 0", f, pending, acks.Waiting())
	}

	// The processor replaces its consumer (a take-over): each new one's
	// messages are acknowledged through it, and nothing is kept.
	for r, name := range []string{"lookout-test-2", "lookout-test-3"} {
		pre := "r" + strconv.Itoa(r)
		publishChat(t, p, pre+"m0", pre+"m1", pre+"m2")
		cctx, cancel = context.WithCancel(ctx)
		delivered = delivered[:0]
		go func() {
			done <- c.Consume(cctx, name, []int{part}, ConsumeOptions{}, func(_ context.Context, d Delivery) error {
				acks.Add(d)
				if delivered = append(delivered, d.Items...); len(delivered) == 3 {
					cancel()
				}
				return nil
			})
		}()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		acks.Committed(delivered)
		want := uint64(3 + 3*(r+1))
		if f, w, n := ackFloor(t, c, name, want), acks.Waiting(), len(acks.queues); f != want || w != 0 || n != 1 || acks.latest.consumer != name {
			t.Errorf("after consumer %s: ack floor %d, %d waiting, %d queues kept; want %d, 0 and only its own", name, f, w, n, want)
		}
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
		done <- c.Consume(cctx, "lookout-test-1", []int{part}, ConsumeOptions{}, func(_ context.Context, d Delivery) error {
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
	plain := make([]item.Item, len(got))
	for i, it := range got {
		if it.Delivery == 0 {
			t.Errorf("item %s handed on without its delivery's number", it.ID)
		}
		it.Delivery = 0
		plain[i] = it
	}
	if len(got) != 4 || !reflect.DeepEqual(plain, items) {
		t.Fatalf("consumed %+v, want %+v", plain, items)
	}
	if len(first.Items) != 3 {
		t.Fatalf("first message carried %d items, want 3", len(first.Items))
	}
	// A redelivery of the batch while its items wait: its items, decoded
	// anew, go to the store as duplicates, and both deliveries wait.
	redelivered := first
	redelivered.Items = slices.Clone(first.Items)
	acks.Add(redelivered)
	acks.Committed([]item.Item{got[0], got[1], got[3], redelivered.Items[0], redelivered.Items[1]})
	if f, w := ackFloor(t, c, "lookout-test-1", 0), acks.Waiting(); f != 0 || w != 3 {
		t.Errorf("after committing all but the batch's last item: ack floor %d, %d waiting; want 0, 3", f, w)
	}
	acks.Committed([]item.Item{got[2], redelivered.Items[2]})
	if f, w := ackFloor(t, c, "lookout-test-1", 2), acks.Waiting(); f != 2 || w != 0 {
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
	if _, _, err := c.openConsumer(ctx, "lookout-test-1", []int{withConsumer}, ConsumeOptions{AckWait: time.Minute, MaxAckPending: 10}); err != nil {
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
		wantCons := map[int]string{withConsumer: "lookout-test-1"}[s.Partition]
		if s.Partition != slices.Index(st, s) || s.Lag != want || s.Owner != "" || s.Consumer != wantCons {
			t.Errorf("partition %d: lag %d, owner %q, consumer %q; want lag %d, no owner, consumer %q", s.Partition, s.Lag, s.Owner, s.Consumer, want, wantCons)
		}
	}
}

// roomsByPartition finds a room of source bili in each of n partitions.
func roomsByPartition(n int) []string {
	rooms := make([]string, n)
	found := 0
	for r := 0; found < n; r++ {
		p := Partition("bili", strconv.Itoa(r), n)
		if rooms[p] == "" {
			rooms[p] = strconv.Itoa(r)
			found++
		}
	}
	return rooms
}

// consumeUntil runs Consume of parts as name, registering every delivery
// with acks, until want items arrived or the stream has been quiet for a
// consumerInfo is the stream's current view of consumer name.
func consumerInfo(t *testing.T, c *Conn, name string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx := context.Background()
	cons, err := c.js.Consumer(ctx, "TEST_ITEMS", name)
	if err != nil {
		t.Fatalf("consumer %s: %v", name, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// publishChat publishes a chat line of room 7 on source bili for each id,
// in order, waits until the stream has them all, and returns the items
// as published.
func publishChat(t *testing.T, p *Publisher, ids ...string) []item.Item {
	t.Helper()
	ctx := context.Background()
	var items []item.Item
	for _, id := range ids {
		it := item.Item{Source: "bili", Kind: item.KindChat, Room: "7", ID: id, Text: "x"}
		items = append(items, it)
		if err := p.Publish(ctx, &it); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	return items
}

// ackFloor waits, as acksArrive does, for name's ack floor to be want and
// returns the floor it then has.
func ackFloor(t *testing.T, c *Conn, name string, want uint64) uint64 {
	t.Helper()
	floor := func() uint64 { return consumerInfo(t, c, name).AckFloor.Stream }
	acksArrive(c, func() bool { return floor() == want })
	return floor()
}

// while after them; it returns the deliveries.
func consumeUntil(t *testing.T, c *Conn, acks *Acks, name string, parts []int, want int) []Delivery {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []Delivery
	n := 0
	done := make(chan error, 1)
	go func() {
		done <- c.Consume(ctx, name, parts, ConsumeOptions{}, func(_ context.Context, d Delivery) error {
			acks.Add(d)
			mu.Lock()
			got = append(got, d)
			n += len(d.Items)
			mu.Unlock()
			return nil
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		k := n
		mu.Unlock()
		if k >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s got %d items, want %d", name, k, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // anything beyond want shows up
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

func itemsOf(ds []Delivery) []item.Item {
	var out []item.Item
	for _, d := range ds {
		out = append(out, d.Items...)
	}
	return out
}

// One consumer reads several partitions in stream order and acknowledges
// only the committed prefix, whatever order the partitions commit in. A
// processor taking some of them over from a dead one's consumer gets every
// message not acknowledged and none below the floor; the dead consumer
// gives the partitions up and is deleted once it has none; a consumer over
// partitions at different positions hands on nothing a partition already
// had done.
func TestConsumerPerProcessorTakeOver(t *testing.T) {
	url := startNATS(t)
	c := dial(t, url, nil)
	ctx := context.Background()
	rooms := roomsByPartition(4)
	p := c.NewPublisher(PublisherOptions{Window: 64, BatchItems: 1})
	byPart := make([][]item.Item, 4)
	for r := range 3 {
		for part := range 4 {
			it := item.Item{Source: "bili", Kind: item.KindChat, Room: rooms[part], ID: fmt.Sprintf("p%d-%d", part, r), Text: "x"}
			byPart[part] = append(byPart[part], it)
			if err := p.Publish(ctx, &it); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	// Stream sequences: item r of partition part is 4r + part + 1.
	seqOf := func(part, r int) uint64 { return uint64(4*r + part + 1) }

	// Processor a reads all four through one consumer, in stream order.
	acksA := c.NewAcks()
	got := consumeUntil(t, c, acksA, "lookout-a-1", []int{0, 1, 2, 3}, 12)
	for i, d := range got {
		if d.Seq != uint64(i+1) || d.Consumer != "lookout-a-1" || len(d.Items) != 1 {
			t.Fatalf("delivery %d: seq %d, consumer %s, %d items; want seq %d of lookout-a-1, one item", i, d.Seq, d.Consumer, len(d.Items), i+1)
		}
	}
	// Partitions 1–3 commit everything, partition 0 only its first item:
	// the acknowledgement stops before partition 0's second.
	delivered := make([][]item.Item, 4) // as handed on, with their deliveries' numbers
	for _, d := range got {
		delivered[d.Partition] = append(delivered[d.Partition], d.Items...)
	}
	if !slices.EqualFunc(delivered[0], byPart[0], func(a, b item.Item) bool { return a.ID == b.ID }) {
		t.Fatalf("partition 0 delivered %v, want %v", itemsOf(got), byPart[0])
	}
	var committed []item.Item
	for part := 1; part < 4; part++ {
		committed = append(committed, delivered[part]...)
	}
	acksA.Committed(committed)
	if f := ackFloor(t, c, "lookout-a-1", 0); f != 0 {
		t.Errorf("ack floor %d with partition 0's first item not committed, want 0", f)
	}
	acksA.Committed(delivered[0][:1])
	floor := seqOf(0, 1) - 1
	if f := ackFloor(t, c, "lookout-a-1", floor); f != floor {
		t.Fatalf("ack floor %d, want %d (just before partition 0's second item)", f, floor)
	}
	// a dies. b takes partitions 0 and 1 over: it gets everything above
	// the floor on them (partition 1's last two items again: committed
	// by a, not acknowledged), nothing at or below it.
	acksB := c.NewAcks()
	gotB := itemsOf(consumeUntil(t, c, acksB, "lookout-b-1", []int{0, 1}, 4))
	wantB := []string{"p0-1", "p1-1", "p0-2", "p1-2"}
	var ids []string
	for _, it := range gotB {
		ids = append(ids, it.ID)
	}
	if !slices.Equal(ids, wantB) {
		t.Errorf("b got %v, want %v", ids, wantB)
	}
	if fs := filterPartitions(consumerInfo(t, c, "lookout-a-1").Config); !slices.Equal(fs, []int{2, 3}) {
		t.Errorf("a's consumer holds partitions %v after b took 0 and 1, want [2 3]", fs)
	}
	acksB.Committed(gotB)
	if f := ackFloor(t, c, "lookout-b-1", seqOf(1, 2)); f != seqOf(1, 2) {
		t.Errorf("b's ack floor %d, want %d", f, seqOf(1, 2))
	}
	// c takes 2 and 3 from a's consumer, which is then deleted; it
	// commits nothing.
	gotC := itemsOf(consumeUntil(t, c, c.NewAcks(), "lookout-c-1", []int{2, 3}, 4))
	if len(gotC) != 4 {
		t.Errorf("c got %d items, want 4 (items 1 and 2 of partitions 2 and 3)", len(gotC))
	}
	if _, err := c.js.Consumer(ctx, "TEST_ITEMS", "lookout-a-1"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("a's consumer, left with no partitions: %v, want it deleted", err)
	}
	// d takes all four: partitions 2 and 3 from c's floor, 0 and 1 from
	// b's, which is further on. The consumer starts at the lower one; the
	// messages of 0 and 1 below b's floor come with no items and are
	// acknowledged as they come.
	acksD := c.NewAcks()
	gotD := consumeUntil(t, c, acksD, "lookout-d-1", []int{0, 1, 2, 3}, 4)
	var skipped int
	ids = ids[:0]
	for _, d := range gotD {
		if len(d.Items) == 0 {
			skipped++
			if d.Partition > 1 {
				t.Errorf("message %d of partition %d handed on with no items", d.Seq, d.Partition)
			}
		}
		for _, it := range d.Items {
			ids = append(ids, it.ID)
		}
	}
	if want := []string{"p2-1", "p3-1", "p2-2", "p3-2"}; !slices.Equal(ids, want) || skipped != 4 {
		t.Errorf("d got items %v and %d messages with none, want %v and 4 (partitions 0 and 1's two each, done by b)", ids, skipped, want)
	}
	// The messages with no items are acknowledged as they come, up to
	// the first one d has not committed (partition 2's item 1).
	if f := ackFloor(t, c, "lookout-d-1", seqOf(1, 1)); f != seqOf(1, 1) {
		t.Errorf("d's ack floor %d before any commit, want %d (partitions 0 and 1's messages before partition 2's first)", f, seqOf(1, 1))
	}
	acksD.Committed(itemsOf(gotD))
	if f := ackFloor(t, c, "lookout-d-1", seqOf(3, 2)); f != seqOf(3, 2) {
		t.Errorf("d's ack floor %d after committing all, want %d", f, seqOf(3, 2))
	}
	for _, name := range []string{"lookout-b-1", "lookout-c-1"} {
		if _, err := c.js.Consumer(ctx, "TEST_ITEMS", name); !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Errorf("%s after d took its partitions: %v, want it deleted", name, err)
		}
	}
	kv, err := c.js.KeyValue(ctx, PositionsBucket("TEST_ITEMS"))
	if err != nil {
		t.Fatal(err)
	}
	for part, want := range map[int]uint64{0: seqOf(1, 2) + 1, 1: seqOf(1, 2) + 1, 2: floor + 1, 3: floor + 1} {
		e, err := kv.Get(ctx, positionKey(part))
		if err != nil || string(e.Value()) != strconv.FormatUint(want, 10) {
			t.Errorf("position of partition %d: %v %v, want %d", part, e, err, want)
		}
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Consumer != "lookout-d-1" {
			t.Errorf("status: partition %d read by %q, want lookout-d-1", s.Partition, s.Consumer)
		}
	}
}

// A consumer stopped while it hands a batch on (its partitions moved to a
// new consumer) leaves that batch waiting for good: the new consumer's
// deliveries are acknowledged all the same.
func TestAcksAfterConsumerStoppedMidBatch(t *testing.T) {
	url := startNATS(t)
	c := dial(t, url, nil)
	p := c.NewPublisher(PublisherOptions{Window: 8, BatchItems: 2})
	publishChat(t, p, "m0", "m1")
	part := Partition("bili", "7", 4)
	acks := c.NewAcks()
	first := consumeUntil(t, c, acks, "lookout-test-1", []int{part}, 2)
	if len(first) != 1 || len(first[0].Items) != 2 {
		t.Fatalf("got %d deliveries, want the one batch of 2 items", len(first))
	}
	// Only the batch's first item was handed on before the stop.
	acks.Committed(first[0].Items[:1])

	publishChat(t, p, "m2")
	second := consumeUntil(t, c, acks, "lookout-test-2", []int{part}, 3)
	acks.Committed(itemsOf(second))
	if f := ackFloor(t, c, "lookout-test-2", 2); f != 2 {
		t.Errorf("new consumer's ack floor %d after committing all it delivered, want 2 (the batch again and m2)", f)
	}
	if w := acks.Waiting(); w != 1 {
		t.Errorf("%d deliveries waiting, want 1: the stopped consumer's half-handed batch", w)
	}
}

// A processor that comes back under the same id makes a consumer of the
// same name, perhaps for fewer partitions: the partitions the old one held
// and the new one does not keep their position in the bucket, so whoever
// takes them next resumes after what was acknowledged.
func TestConsumerOfSameNameKeepsOtherPositions(t *testing.T) {
	url := startNATS(t)
	c := dial(t, url, nil)
	ctx := context.Background()
	rooms := roomsByPartition(4)
	p := c.NewPublisher(PublisherOptions{Window: 8, BatchItems: 1})
	for r := range 2 {
		for part := range 2 {
			it := item.Item{Source: "bili", Kind: item.KindChat, Room: rooms[part], ID: fmt.Sprintf("p%d-%d", part, r), Text: "x"}
			if err := p.Publish(ctx, &it); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	acks := c.NewAcks()
	got := itemsOf(consumeUntil(t, c, acks, "lookout-a-1", []int{0, 1}, 4))
	acks.Committed(got)
	if f := ackFloor(t, c, "lookout-a-1", 4); f != 4 {
		t.Fatalf("ack floor %d after committing all four, want 4", f)
	}
	// The processor restarts under the same id with partition 0 only.
	if _, _, err := c.openConsumer(ctx, "lookout-a-1", []int{0}, ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	_, pos, err := c.openConsumer(ctx, "lookout-b-1", []int{1}, ConsumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pos[1] != 5 {
		t.Errorf("partition 1 resumes at %d, want 5 (after the old consumer's ack floor)", pos[1])
	}
}

// A consumer of the earlier layout (one per partition, lookout-p<N>)
// counts as a holder: a consumer made for its partition resumes after its
// ack floor, and the old one is deleted.
func TestConsumerResumesFromPerPartitionConsumer(t *testing.T) {
	url := startNATS(t)
	c := dial(t, url, nil)
	ctx := context.Background()
	room := roomsByPartition(4)[1]
	p := c.NewPublisher(PublisherOptions{Window: 8, BatchItems: 1})
	for i := range 4 {
		it := item.Item{Source: "bili", Kind: item.KindChat, Room: room, ID: "m" + strconv.Itoa(i), Text: "x"}
		if err := p.Publish(ctx, &it); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	old, err := c.js.CreateConsumer(ctx, "TEST_ITEMS", jetstream.ConsumerConfig{Durable: "lookout-p1", FilterSubject: SubjectPrefix + "1",
		AckPolicy: jetstream.AckAllPolicy, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := old.Fetch(2)
	if err != nil {
		t.Fatal(err)
	}
	var last jetstream.Msg
	for m := range batch.Messages() {
		last = m
	}
	if last == nil {
		t.Fatal("no message fetched")
	}
	if err := last.DoubleAck(ctx); err != nil { // acknowledges the first two
		t.Fatal(err)
	}
	got := itemsOf(consumeUntil(t, c, c.NewAcks(), "lookout-x-1", []int{1}, 2))
	if len(got) != 2 || got[0].ID != "m2" || got[1].ID != "m3" {
		t.Errorf("new consumer got %v, want m2 and m3 (after the old consumer's ack floor)", got)
	}
	if _, err := c.js.Consumer(ctx, "TEST_ITEMS", "lookout-p1"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the per-partition consumer after its partition was taken: %v, want it deleted", err)
	}
}

package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"lookout/config"
	"lookout/item"
	"lookout/transport"
)

// distState is what the collect and process roles add to a daemon: the
// connection to the NATS stream and, in the process role, the deliveries
// waiting for their items' commit.
//
// Collect role: the items collectors emit are published to their room's
// partition in batches (one message carries up to transport.nats.batch_items
// items of one partition, gathered for at most batch_window), in the order
// they were emitted; a collector's state (cursor, seen ids) is written to
// the stream's key-value bucket <stream>_state only after every batch is
// sent and the stream acknowledged every item emitted before it, so a kill -9 at
// any point loses no item (what the state says was seen is durable in the
// stream), and a collector restarted on another machine carries on from
// it. The local store keeps the sources' health only.
//
// Process role: one durable pull consumer over the owned partitions
// (transport.Conn.Consume) feeds the classifier, the alert engine and the
// store writer exactly as the collectors do in the all role; a message is
// acknowledged only after its item is committed (store.Writer.Settled); a
// batch only after the last of its items is, and cumulatively: only up to
// the first message with an item not committed yet. A redelivery of an item this
// process already handled goes to the store only (scored, see handOn), where
// its (source, item id) key drops it, and is acknowledged with the commit.
type distState struct {
	d    *Daemon
	conn *transport.Conn
	acks *transport.Acks
	// static are the partitions given with Options.Partitions; without
	// them the assigner shares the partitions among the live processors.
	static   []int
	assigner *transport.Assigner
	// id names this processor among those sharing the partitions, and
	// its consumers.
	id string
	// states holds the collectors' state in the collect role.
	states *transport.StateStore
}

func newDistState(ctx context.Context, d *Daemon) (*distState, error) {
	c := d.cfg.Transport.NATS
	conn, err := transport.Connect(ctx, c, "lookout-"+d.role, d.log.With("stage", "transport"), d.reg)
	if err != nil {
		return nil, err
	}
	ds := &distState{d: d, conn: conn, acks: conn.NewAcks(), static: d.opts.Partitions}
	for _, p := range ds.static {
		if p < 0 || p >= conn.Partitions() {
			conn.Close()
			return nil, fmt.Errorf("partition %d: out of 0..%d (transport.nats.partitions)", p, conn.Partitions()-1)
		}
	}
	if d.role == RoleCollect {
		if ds.states, err = conn.NewStateStore(ctx); err != nil {
			conn.Close()
			return nil, err
		}
	}
	ds.id = d.opts.ProcessorID
	if ds.id == "" {
		host, _ := os.Hostname()
		ds.id = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if d.role == RoleProcess && len(ds.static) == 0 {
		lease := cmp.Or(d.opts.PartitionLease, c.PartitionLease.D())
		if ds.assigner, err = conn.NewAssigner(ctx, ds.id, lease); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return ds, nil
}

// consume reads the owned partitions through one consumer until ctx ends,
// and keeps the lag gauges current. New items go to raw (the classifier); an item
// this process handled before goes straight to the store.
func (ds *distState) consume(ctx context.Context, raw chan<- item.Item, toStore chan<- []item.Item) {
	d := ds.d
	out := func(ctx context.Context, del transport.Delivery) error { return ds.handOn(ctx, del, raw, toStore) }
	var wg sync.WaitGroup
	// One consumer reads every partition this processor owns; when the
	// set changes it is stopped and a consumer for the new set made,
	// which resumes every partition where it was acknowledged. set, cur
	// and gen belong to the goroutine calling gain and lose.
	var set []int
	var cur struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	var gen uint64
	id := ds.id
	restart := func() {
		if cur.cancel != nil {
			cur.cancel()
			<-cur.done
			cur.cancel = nil
		}
		if len(set) == 0 {
			return
		}
		parts := slices.Clone(set)
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		cur.cancel, cur.done = cancel, done
		wg.Go(func() {
			defer close(done)
			for {
				gen++
				name := transport.ConsumerName(id, gen)
				err := ds.conn.Consume(cctx, name, parts, transport.ConsumeOptions{}, out)
				if err == nil || cctx.Err() != nil {
					return
				}
				d.log.Error("consumer stopped; making it again", "consumer", name, "partitions", parts, "err", err)
				select {
				case <-time.After(time.Second):
				case <-cctx.Done():
					return
				}
			}
		})
	}
	gain := func(ps []int) {
		ds.adopt(ctx, ps)
		for _, p := range ps {
			if !slices.Contains(set, p) {
				set = append(set, p)
			}
		}
		slices.Sort(set)
		restart()
	}
	lose := func(ps []int) {
		set = slices.DeleteFunc(set, func(p int) bool { return slices.Contains(ps, p) })
		restart()
	}
	if ds.assigner != nil {
		d.log.Info("sharing partitions with the other processors", "processor", ds.assigner.ID())
		wg.Go(func() { ds.assigner.Run(ctx, gain, lose) })
	} else {
		d.log.Info("consuming partitions", "partitions", ds.static)
		gain(ds.static)
	}
	wg.Go(func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			if st, err := ds.conn.Lags(ctx); err == nil {
				ds.conn.SetGauges(st, ds.Owned())
			} else if ctx.Err() == nil {
				d.log.Warn("partition status", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	wg.Wait()
}

// handOn passes a delivery's items on: new ones to raw (the classifier,
// the engine, the store), an item this process handled before straight to
// the store, scored, where its (source, item id) key drops it and its
// commit settles this delivery. It is scored because its first copy may
// still be on its way through the classifier: the store keeps whichever
// copy it commits first, and that must not be a copy without a score.
func (ds *distState) handOn(ctx context.Context, del transport.Delivery, raw chan<- item.Item, toStore chan<- []item.Item) error {
	d := ds.d
	// Every item of the message is registered before the first is
	// handed on, so that the message is acknowledged only once the last
	// of them is committed.
	ds.acks.Add(del)
	for _, it := range del.Items {
		if !d.dedupe.addItemIfNew(&it) {
			d.metrics.duplicates.Inc()
			d.score(&it)
			if err := sendTo(ctx, d.metrics, toStore, []item.Item{it}, "store"); err != nil {
				return err
			}
			continue
		}
		if err := d.send(ctx, raw, it, "classifier"); err != nil {
			d.dedupe.forgetItem(&it)
			return err
		}
	}
	return nil
}

// adopt hands the engine the open alerts of the rooms of partitions ps
// from the store before their items flow: a processor taking partitions
// over from one that died carries on the alerts that one opened (no second
// firing notice) when they share a store. The open alerts are read once
// for all of ps; rows of rooms in other partitions are left alone.
func (ds *distState) adopt(ctx context.Context, ps []int) {
	if len(ps) == 0 {
		return
	}
	d := ds.d
	open, err := d.shared.OpenAlerts(ctx)
	if err != nil {
		d.log.Warn("open alerts of partitions taken over not read; their alerts may fire again", "partitions", ps, "err", err)
		return
	}
	mine := open[:0:0]
	for _, row := range open {
		if slices.Contains(ps, transport.Partition(row.Source, row.Room, ds.conn.Partitions())) {
			mine = append(mine, row)
		}
	}
	if len(mine) > 0 {
		n := d.engine.Adopt(mine, time.Now())
		d.log.Info("took over the open alerts of partitions", "partitions", ps, "adopted", n)
	}
}

// release gives the partitions back once the pipeline has drained, so
// that another processor takes them over without waiting for the lease.
func (ds *distState) release(ctx context.Context) {
	if ds.assigner != nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		ds.assigner.Release(ctx)
	}
}

// Owned lists the partitions this daemon consumes now: those it holds a
// lease on, or those it was given.
func (ds *distState) Owned() []int {
	if ds.assigner != nil {
		return ds.assigner.Owned()
	}
	return slices.Sorted(slices.Values(ds.static))
}

// runCollect is Run for the collect role: collectors → stream, with the
// collectors' state written after the items it covers are acknowledged.
func (d *Daemon) runCollect(ctx context.Context) error {
	defer d.store.Close()
	defer d.dist.conn.Close()
	log := d.log
	drainCtx, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()

	raw := make(chan item.Item, d.opts.ChannelSize)
	srv := d.startHTTP(log)
	published := make(chan error, 1)
	go func() { published <- d.dist.publish(drainCtx, raw) }()

	d.state.attach(raw)
	d.startSources(ctx, raw)
	var loops sync.WaitGroup
	loops.Go(func() { d.healthLoop(ctx) })

	timer := d.stopCollecting(ctx, &loops, raw, cancelDrain)
	defer timer.Stop()
	err := <-published
	d.finishShutdown(ctx, srv)
	return err
}

// publish sends every item on raw to the stream until raw is closed. A
// state item waits until the stream holds every item before it, then goes
// to the store. It returns an error only when ctx ends before everything
// is acknowledged: the state of what was not is not written, so the
// collectors fetch it again on their next start.
func (ds *distState) publish(ctx context.Context, raw <-chan item.Item) error {
	d := ds.d
	nc := d.cfg.Transport.NATS
	pub := ds.conn.NewPublisher(transport.PublisherOptions{Window: 1024, BatchItems: nc.BatchItems})
	window := nc.BatchWindow.D()
	if window <= 0 {
		window = 20 * time.Millisecond
	}
	// A payload the processors' store would not keep does not travel.
	keepRaw := d.cfg.Store.KeepRawEnabled() && d.users == nil
	// An idle stream settles now and then, so that the pending window
	// does not hold acknowledgements while nothing new comes.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	// Batches not full leave when the window after their first item ends.
	flush := time.NewTimer(window)
	flush.Stop()
	flushArmed := false
	fail := func(err error) error {
		d.log.Error("publishing stopped; state of items not acknowledged is not saved", "err", err)
		// Keep raw moving so that nothing upstream blocks on it.
		for range raw {
		}
		return err
	}
	for {
		var it item.Item
		var ok bool
		select {
		case it, ok = <-raw:
		case <-flush.C:
			flushArmed = false
			if err := pub.Flush(ctx); err != nil {
				return fail(err)
			}
			continue
		case <-tick.C:
			if err := pub.Settle(ctx); err != nil {
				return fail(err)
			}
			continue
		}
		if !ok {
			break
		}
		if it.Kind == item.KindState {
			if err := pub.Settle(ctx); err != nil {
				return fail(err)
			}
			if err := ds.states.PutStates(ctx, it.Source, it.State); err != nil {
				// Not fatal: the collector fetches again from an older
				// cursor, and the stream and the store drop what they hold.
				d.log.Error("collector state not saved", "source", it.Source, "err", err)
			}
			continue
		}
		if !keepRaw {
			it.Raw = nil
		}
		if err := pub.Publish(ctx, &it); err != nil {
			if !errors.Is(err, transport.ErrEncode) {
				return fail(err)
			}
			d.log.Error("item not published: it does not encode", "source", it.Source, "item_id", it.ID, "room", it.Room, "err", err)
		}
		if !flushArmed && pub.Buffered() > 0 {
			flush.Reset(window)
			flushArmed = true
		}
	}
	if err := pub.Settle(ctx); err != nil {
		return fail(err)
	}
	return nil
}

// Partitions writes, for a config whose transport is nats, every
// partition's owner and the consumer that reads it, with that consumer's
// lag (messages not yet delivered), messages delivered and not
// acknowledged, those of them delivered more than once, and ack floor, as
// `lookout status -c` shows them. A processor reads all its partitions
// through one consumer, so those figures are per consumer: the same on
// every row of one owner.
func Partitions(ctx context.Context, cfg *config.Config, format string, w io.Writer) error {
	if !cfg.TransportNATS() {
		return fmt.Errorf("transport.kind is %q: there are no partitions", cfg.Transport.Kind)
	}
	rw, err := NewRowWriter(format, w)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := transport.Connect(ctx, cfg.Transport.NATS, "lookout-status", nil, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	st, err := conn.Status(ctx)
	if err != nil {
		return err
	}
	if err := rw.Columns([]string{"partition", "owner", "consumer", "lag", "ack_pending", "redelivered", "ack_floor"}); err != nil {
		return err
	}
	orNil := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	for _, p := range st {
		if err := rw.Row([]any{int64(p.Partition), orNil(p.Owner), orNil(p.Consumer), int64(p.Lag), int64(p.AckPending), int64(p.Redelivered), int64(p.AckFloor)}); err != nil {
			return err
		}
	}
	return rw.End()
}

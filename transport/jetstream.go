package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"lookout/config"
	"lookout/internal/metrics"
	"lookout/item"
)

// Conn is a connection to NATS with the items stream in place.
type Conn struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	stream     string
	partitions int
	log        *slog.Logger
	m          *connMetrics
}

type connMetrics struct {
	published     prometheus.Counter
	publishErrors prometheus.Counter
	encodeErrors  prometheus.Counter
	consumed      *prometheus.CounterVec
	redelivered   *prometheus.CounterVec
	badMessages   *prometheus.CounterVec
	acked         prometheus.Counter
	lag           *prometheus.GaugeVec
	ackPending    *prometheus.GaugeVec
	owned         *prometheus.GaugeVec
}

func newConnMetrics(reg prometheus.Registerer) *connMetrics {
	m := &connMetrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_transport_published_total",
			Help: "Messages (an item or a batch of items) the stream acknowledged (a resend the stream dropped as a duplicate counts too)."}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_transport_publish_errors_total",
			Help: "Publishes that failed and were sent again."}),
		encodeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_transport_encode_errors_total",
			Help: "Items that could not be encoded for the stream (each is logged)."}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_transport_consumed_total",
			Help: "Messages received from the stream, by partition."}, []string{"partition"}),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_transport_redelivered_total",
			Help: "Messages received again because an earlier delivery was not acknowledged, by partition."}, []string{"partition"}),
		badMessages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_transport_bad_messages_total",
			Help: "Messages, or items of a batch, that do not decode as an item; each is logged with its stream sequence, and a message with no good item is terminated."}, []string{"partition"}),
		acked: prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_transport_acked_total",
			Help: "Messages acknowledged after every item they carry was committed to the store (or, when a consumer is made again, after an earlier one had them done)."}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_transport_consumer_lag",
			Help: "Messages in the stream not yet delivered to the consumer (one per processor, over its partitions)."}, []string{"consumer"}),
		ackPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_transport_ack_pending",
			Help: "Messages delivered to the consumer (one per processor, over its partitions) and not yet acknowledged."}, []string{"consumer"}),
		owned: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_transport_partition_owned",
			Help: "1 for each partition this processor consumes."}, []string{"partition"}),
	}
	if reg != nil {
		m.published = metrics.MustRegister(reg, m.published)
		m.publishErrors = metrics.MustRegister(reg, m.publishErrors)
		m.encodeErrors = metrics.MustRegister(reg, m.encodeErrors)
		m.consumed = metrics.MustRegister(reg, m.consumed)
		m.redelivered = metrics.MustRegister(reg, m.redelivered)
		m.badMessages = metrics.MustRegister(reg, m.badMessages)
		m.acked = metrics.MustRegister(reg, m.acked)
		m.lag = metrics.MustRegister(reg, m.lag)
		m.ackPending = metrics.MustRegister(reg, m.ackPending)
		m.owned = metrics.MustRegister(reg, m.owned)
	}
	return m
}

// Connect dials NATS as c says (credentials from the environment through
// config secrets, optional TLS) and creates the items stream when it does
// not exist yet. An existing stream is used as it is: its limits and
// replicas belong to whoever runs NATS.
func Connect(ctx context.Context, c config.NATSConfig, name string, log *slog.Logger, reg prometheus.Registerer) (*Conn, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Warn("nats error", "err", err) }),
	}
	if c.Token.IsSet() {
		opts = append(opts, nats.Token(c.Token.Value()))
	} else if c.User.IsSet() || c.Password.IsSet() {
		opts = append(opts, nats.UserInfo(c.User.Value(), c.Password.Value()))
	}
	if c.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.TLS.CAFile))
	}
	if c.TLS.CertFile != "" {
		opts = append(opts, nats.ClientCert(c.TLS.CertFile, c.TLS.KeyFile))
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	partitions := max(c.Partitions, 1)
	conn := &Conn{nc: nc, js: js, stream: c.Stream, partitions: partitions, log: log, m: newConnMetrics(reg)}
	if err := conn.ensureStream(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return conn, nil
}

// StreamConfig is the items stream lookout creates when none exists:
// every partition subject, file storage, a two-minute window in which a
// resent message id is dropped, and a day of history for replays and
// other consumers (analytics).
func StreamConfig(name string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{SubjectPrefix + ">"},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     24 * time.Hour,
		Duplicates: 2 * time.Minute,
	}
}

func (c *Conn) ensureStream(ctx context.Context) error {
	_, err := c.js.Stream(ctx, c.stream)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("look up stream %s: %w", c.stream, err)
	}
	_, err = c.js.CreateStream(ctx, StreamConfig(c.stream))
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("create stream %s: %w", c.stream, err)
	}
	return nil
}

// Partitions is how many partitions the items are spread over.
func (c *Conn) Partitions() int { return c.partitions }

// Close flushes what is buffered (acknowledgements included) and closes
// the connection.
func (c *Conn) Close() {
	if err := c.nc.FlushTimeout(2 * time.Second); err != nil {
		c.log.Warn("nats flush before close", "err", err)
	}
	c.nc.Close()
}

// ErrEncode is the error of an item that cannot be encoded (a NaN in its
// score): bad input, not a transport failure.
var ErrEncode = errors.New("item does not encode")

// Publisher sends items to the stream asynchronously and tells, through
// Settle, when every item sent so far is durable there. Items of one
// partition are gathered into batches (one message of several items, in
// the order they were given); a batch leaves when it is full, or on Flush
// or Settle. Not safe for concurrent use: one goroutine owns it.
type Publisher struct {
	c        *Conn
	pending  []pubPending
	window   int
	maxItems int
	maxBytes int
	batches  map[int]*pubBatch
	buffered int
}

// pubBatch is the batch being built for one partition: the items' encoded
// forms, and the message ids of its first and last item.
type pubBatch struct {
	buf         []byte
	n           int
	first, last string
}

type pubPending struct {
	msg *nats.Msg
	f   jetstream.PubAckFuture
}

// PublisherOptions tune a Publisher.
type PublisherOptions struct {
	// Window is how many messages may wait for their acknowledgement
	// before Publish settles by itself (default 1024).
	Window int
	// BatchItems bounds the items of one message (default 128; 1 sends
	// every item as a message of its own, in the single-item form).
	BatchItems int
	// BatchBytes bounds the encoded size of one batch (default 256 KiB,
	// well under the server's default 1 MiB payload limit).
	BatchBytes int
}

// NewPublisher returns a publisher with the options o.
func (c *Conn) NewPublisher(o PublisherOptions) *Publisher {
	if o.Window <= 0 {
		o.Window = 1024
	}
	if o.BatchItems <= 0 {
		o.BatchItems = 128
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 256 << 10
	}
	return &Publisher{c: c, window: o.Window, maxItems: o.BatchItems, maxBytes: o.BatchBytes, batches: map[int]*pubBatch{}}
}

// Publish adds it to its partition's batch, and sends the batch when it is
// full. It returns before the stream acknowledges; Settle waits for that.
func (p *Publisher) Publish(ctx context.Context, it *item.Item) error {
	part := Partition(it.Source, it.Room, p.c.partitions)
	b := p.batches[part]
	if b == nil {
		b = &pubBatch{}
		p.batches[part] = b
	}
	buf, err := AppendBatch(b.buf, it)
	if err != nil {
		p.c.m.encodeErrors.Inc()
		return fmt.Errorf("%w: item %s/%s: %v", ErrEncode, it.Source, it.ID, err)
	}
	b.buf = buf
	id := MsgID(it)
	if b.n == 0 {
		b.first = id
	}
	b.last = id
	b.n++
	p.buffered++
	if b.n >= p.maxItems || len(b.buf) >= p.maxBytes {
		return p.send(ctx, part, b)
	}
	return nil
}

// Buffered is how many items wait in batches not sent yet.
func (p *Publisher) Buffered() int { return p.buffered }

// Flush sends every batch, full or not.
func (p *Publisher) Flush(ctx context.Context) error {
	if p.buffered == 0 {
		return nil
	}
	for part, b := range p.batches {
		if b.n > 0 {
			if err := p.send(ctx, part, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// BatchMsgID is the Nats-Msg-Id of a batch of n items whose first and
// last items have the message ids first and last (MsgID). A batch sent
// again as it was (a publish retried) has the same id, and the stream
// keeps one copy. A batch of one item has that item's id, as an item sent
// alone always had.
func BatchMsgID(first, last string, n int) string {
	if n == 1 {
		return first
	}
	return first + "\x1e" + last + "\x1e" + strconv.Itoa(n)
}

// send publishes partition part's batch b and empties it.
func (p *Publisher) send(ctx context.Context, part int, b *pubBatch) error {
	msg := nats.NewMsg(partitionSubject(part))
	if b.n == 1 {
		// The single-item form: the length prefix is dropped.
		r := &frame{b: b.buf}
		msg.Data = slices.Clone(r.bytes(r.uvarint()))
	} else {
		data := BatchHeader(make([]byte, 0, len(b.buf)+binary.MaxVarintLen64+1), b.n)
		msg.Data = append(data, b.buf...)
	}
	msg.Header.Set(jetstream.MsgIDHeader, BatchMsgID(b.first, b.last, b.n))
	p.buffered -= b.n
	b.buf, b.n, b.first, b.last = b.buf[:0], 0, "", ""
	f, err := p.c.js.PublishMsgAsync(msg, jetstream.WithExpectStream(p.c.stream))
	if err != nil {
		// Too many in flight or not connected: settle what is out, then
		// send this one synchronously.
		if err := p.settle(ctx); err != nil {
			return err
		}
		return p.publishSync(ctx, msg)
	}
	p.pending = append(p.pending, pubPending{msg: msg, f: f})
	if len(p.pending) >= p.window {
		return p.settle(ctx)
	}
	return nil
}

// Settle sends every batch, then waits until the stream acknowledged every
// item published so far, sending again (with the same message id, so the
// stream keeps one copy) any message whose publish failed. It returns an
// error only when ctx ends first.
func (p *Publisher) Settle(ctx context.Context) error {
	if err := p.Flush(ctx); err != nil {
		return err
	}
	return p.settle(ctx)
}

func (p *Publisher) settle(ctx context.Context) error {
	for i, pp := range p.pending {
		select {
		case <-pp.f.Ok():
			p.c.m.published.Inc()
		case err := <-pp.f.Err():
			p.c.m.publishErrors.Inc()
			p.c.log.Warn("publish failed; sending again", "subject", pp.msg.Subject, "err", err)
			if err := p.publishSync(ctx, pp.msg); err != nil {
				p.pending = p.pending[:copy(p.pending, p.pending[i:])]
				return err
			}
		case <-ctx.Done():
			p.pending = p.pending[:copy(p.pending, p.pending[i:])]
			return fmt.Errorf("%d publishes not acknowledged: %w", len(p.pending), ctx.Err())
		}
	}
	clear(p.pending)
	p.pending = p.pending[:0]
	return nil
}

func (p *Publisher) publishSync(ctx context.Context, msg *nats.Msg) error {
	delay := 100 * time.Millisecond
	for {
		// A fresh message: one already handed to the async publisher
		// carries its reply subject.
		m := nats.NewMsg(msg.Subject)
		m.Data, m.Header = msg.Data, msg.Header
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := p.c.js.PublishMsg(tctx, m, jetstream.WithExpectStream(p.c.stream))
		cancel()
		if err == nil {
			p.c.m.published.Inc()
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("publish to %s: %w", msg.Subject, ctx.Err())
		}
		p.c.m.publishErrors.Inc()
		p.c.log.Warn("publish failed; retrying", "subject", msg.Subject, "err", err, "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("publish to %s: %w", msg.Subject, ctx.Err())
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// Delivery is a message received from the stream: its items, in order,
// and the message to acknowledge once every one of them is committed.
type Delivery struct {
	Items     []item.Item
	Msg       jetstream.Msg
	Consumer  string // the durable consumer it came through
	Partition int
	Seq       uint64 // the message's stream sequence (0: read it from Msg)
}

// ConsumeOptions tune Consume.
type ConsumeOptions struct {
	// AckWait is how long the stream waits for an acknowledgement before
	// it delivers a message again (default 30s).
	AckWait time.Duration
	// MaxAckPending bounds the messages of one consumer delivered and
	// not yet acknowledged (default 8192). It must exceed the store's
	// batch size, or the store waits for its flush interval.
	MaxAckPending int
}

// Consume receives the messages of the partitions parts through one
// durable pull consumer named name, made for them (see openConsumer: it
// resumes every partition where the consumers that held it before
// acknowledged), and hands their items to out, in stream order, until ctx
// ends. A message of a partition below that partition's position was
// done under an earlier consumer: it is handed on with no items, to be
// acknowledged in its turn. A message that does not decode is logged,
// counted and terminated (it stays in the stream for inspection); so is a
// batch none of whose items decode. An item of a batch that does not
// decode is logged and counted, and the batch's other items are
// delivered. Consume returns nil when ctx ends; the consumer stays, with
// its ack floor, for whoever consumes the partitions next.
func (c *Conn) Consume(ctx context.Context, name string, parts []int, o ConsumeOptions, out func(context.Context, Delivery) error) error {
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = 8192
	}
	cons, pos, err := c.openConsumer(ctx, name, parts, o)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("consumer for partitions %v: %w", parts, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(min(o.MaxAckPending, 1024)))
	if err != nil {
		return fmt.Errorf("consume partitions %v: %w", parts, err)
	}
	defer it.Stop()
	type partState struct {
		consumed, redelivered, bad prometheus.Counter
		dec                        Decoder
		from                       uint64
	}
	state := make(map[int]*partState, len(parts))
	for _, p := range parts {
		l := strconv.Itoa(p)
		state[p] = &partState{consumed: c.m.consumed.WithLabelValues(l), redelivered: c.m.redelivered.WithLabelValues(l),
			bad: c.m.badMessages.WithLabelValues(l), from: pos[p]}
	}
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			c.log.Warn("receive from stream", "consumer", name, "err", err)
			select {
			case <-time.After(200 * time.Millisecond):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		partition, _ := partitionOfSubject(msg.Subject())
		ps := state[partition]
		md, _ := msg.Metadata()
		var seq uint64
		if md != nil {
			seq = md.Sequence.Stream
		}
		if ps == nil || seq < ps.from {
			// Done under an earlier consumer (or, for a subject not
			// asked for, not this consumer's to handle): acknowledged
			// with what comes before it.
			if err := out(ctx, Delivery{Msg: msg, Consumer: name, Partition: partition, Seq: seq}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			continue
		}
		ps.consumed.Inc()
		if md != nil && md.NumDelivered > 1 {
			ps.redelivered.Inc()
		}
		items, badItems, err := ps.dec.DecodeMessage(msg.Data())
		for _, e := range badItems {
			ps.bad.Inc()
			c.log.Error("item of a batch is not an item; dropped, the message stays in the stream", "partition", partition,
				"stream_seq", seq, "subject", msg.Subject(), "err", e)
		}
		if err == nil && len(items) == 0 {
			err = errors.New("batch without a good item")
		}
		if err != nil {
			ps.bad.Inc()
			c.log.Error("message is not an item; terminated, it stays in the stream", "partition", partition,
				"stream_seq", seq, "subject", msg.Subject(), "err", err)
			if err := msg.Term(); err != nil {
				c.log.Warn("terminate message", "partition", partition, "stream_seq", seq, "err", err)
			}
			continue
		}
		if err := out(ctx, Delivery{Items: items, Msg: msg, Consumer: name, Partition: partition, Seq: seq}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// PartitionStatus is one partition's consumer as the stream reports it.
// A processor reads all its partitions through one consumer, so Lag,
// AckPending, Redelivered, Delivered and AckFloor are that consumer's,
// shared by every partition it holds.
type PartitionStatus struct {
	Partition   int
	Owner       string // the processor holding the partition; "" when none
	Consumer    string // the consumer holding it; "" when none
	Lag         uint64 // messages not yet delivered
	AckPending  int    // delivered, not yet acknowledged
	Redelivered int    // delivered more than once and not yet acknowledged
	Delivered   uint64 // stream sequence last delivered
	AckFloor    uint64 // stream sequence up to which all is acknowledged
}

// Status reports every partition's consumer and owner. A partition no
// consumer holds (no processor ever took it, or its consumer was replaced
// and the new one not made yet) shows the whole stream's messages on its
// subject as lag. It makes the same few requests whatever the number of
// partitions: one listing of the consumers, one of the owners.
func (c *Conn) Status(ctx context.Context) ([]PartitionStatus, error) {
	out, err := c.Lags(ctx)
	if err != nil {
		return nil, err
	}
	owners, err := c.owners(ctx)
	if err != nil {
		return nil, fmt.Errorf("partition owners: %w", err)
	}
	for p := range out {
		out[p].Owner = owners[p]
	}
	return out, nil
}

// Lags is Status without the owners: every partition's consumer, read in
// one listing of the stream's consumers (and one look at the stream's
// subjects when a partition has no consumer). Where two consumers hold a
// partition (a take-over between its steps) the one furthest on counts.
func (c *Conn) Lags(ctx context.Context) ([]PartitionStatus, error) {
	hs, err := c.holders(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PartitionStatus, c.partitions)
	for _, h := range hs {
		for _, p := range filterPartitions(h.Config) {
			if p >= c.partitions || (out[p].Consumer != "" && out[p].AckFloor >= h.AckFloor.Stream) {
				continue
			}
			out[p] = PartitionStatus{Consumer: h.Name, Lag: h.NumPending, AckPending: h.NumAckPending,
				Redelivered: h.NumRedelivered, Delivered: h.Delivered.Stream, AckFloor: h.AckFloor.Stream}
		}
	}
	var subjects map[string]uint64
	for p := range out {
		out[p].Partition = p
		if out[p].Consumer != "" {
			continue
		}
		if subjects == nil {
			st, err := c.js.Stream(ctx, c.stream)
			if err != nil {
				return nil, fmt.Errorf("stream %s: %w", c.stream, err)
			}
			info, err := st.Info(ctx, jetstream.WithSubjectFilter(SubjectPrefix+">"))
			if err != nil {
				return nil, fmt.Errorf("stream %s: %w", c.stream, err)
			}
			subjects = info.State.Subjects
			if subjects == nil {
				subjects = map[string]uint64{}
			}
		}
		out[p].Lag = subjects[partitionSubject(p)]
	}
	return out, nil
}

// SetGauges exports the lag and pending acknowledgements of every
// consumer in st, and which partitions this process owns.
func (c *Conn) SetGauges(st []PartitionStatus, owned []int) {
	c.m.lag.Reset()
	c.m.ackPending.Reset()
	for _, s := range st {
		p := strconv.Itoa(s.Partition)
		if s.Consumer != "" {
			c.m.lag.WithLabelValues(s.Consumer).Set(float64(s.Lag))
			c.m.ackPending.WithLabelValues(s.Consumer).Set(float64(s.AckPending))
		}
		v := 0.0
		if slices.Contains(owned, s.Partition) {
			v = 1
		}
		c.m.owned.WithLabelValues(p).Set(v)
	}
}

// Acks holds the deliveries whose items are on their way to the store and
// acknowledges them once the store reports the items committed.
//
// The consumers acknowledge cumulatively (AckAll: acknowledging a message
// acknowledges every earlier one the consumer delivered, of all its
// partitions), so one acknowledgement covers a whole committed stretch.
// Acks therefore keeps each consumer's deliveries in the order they came
// and acknowledges only up to the first one with an item not committed
// yet: a batch counts as done when the last of its items is, and a
// delivery with no items (done under an earlier consumer) as soon as
// everything before it is. The store may commit items of different
// partitions out of delivery order; acknowledging only a fully committed
// prefix keeps that right. Each consumer has a queue of its own: one
// stopped in the middle of handing a delivery on (its partitions moved)
// leaves that delivery waiting for good, and must not hold up the next.
//
// Add numbers each delivery and writes the number into its items
// (item.Item.Delivery), which travel with them to the store; a commit
// finds its delivery by that number, without a lookup by item id. Every
// copy of an item handed on counts: a redelivery's items, which the
// processor sends straight to the store as duplicates, settle the
// redelivery, and the first delivery's items settle the first.
type Acks struct {
	c  *Conn
	mu sync.Mutex
	// queues holds a queue per consumer read through, by its number
	// (the high bits of a delivery number); latest is the one read now:
	// a processor reads through one consumer at a time, so an earlier
	// one's queue is dropped once it has nothing left to acknowledge.
	queues map[uint64]*ackQueue
	latest *ackQueue
	next   uint64 // the next queue's number
}

// ackQueueShift splits a delivery number: the queue's number above it,
// the delivery's place in the queue below (2^40 deliveries a consumer).
const ackQueueShift = 40

// ackQueue is one consumer's deliveries not acknowledged yet, in the order
// they came; pend[0] is the delivery numbered base.
type ackQueue struct {
	num      uint64
	consumer string
	pend     []pendingDelivery
	base     uint64
}

type pendingDelivery struct {
	msg  jetstream.Msg
	seq  uint64 // the message's stream sequence
	left int    // items not committed yet (0: done)
}

// NewAcks returns an empty set of pending acknowledgements.
func (c *Conn) NewAcks() *Acks {
	return &Acks{c: c, queues: map[uint64]*ackQueue{}, next: 1} // 0 is no delivery
}

// acked reports whether the store's commit of it settles a delivery:
// collectors' state and items without an id are not acknowledged one by
// one.
func acked(it *item.Item) bool { return it.Kind != item.KindState && it.ID != "" }

// Add records d as waiting for the commit of every one of its items and
// numbers them with it. It must be called before any of them is handed
// on. A delivery with no items is done: it is acknowledged once
// everything before it is.
func (a *Acks) Add(d Delivery) {
	seq := d.Seq
	if seq == 0 {
		if md, err := d.Msg.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
	}
	a.mu.Lock()
	q := a.latest
	if q == nil || q.consumer != d.Consumer {
		if q != nil && len(q.pend) == 0 {
			delete(a.queues, q.num)
		}
		q = nil
		for _, o := range a.queues {
			if o.consumer == d.Consumer {
				q = o
			}
		}
		if q == nil {
			q = &ackQueue{num: a.next, consumer: d.Consumer}
			a.queues[q.num] = q
			a.next++
		}
		a.latest = q
	}
	num := q.num<<ackQueueShift | (q.base + uint64(len(q.pend)))
	left := 0
	for i := range d.Items {
		if it := &d.Items[i]; acked(it) {
			it.Delivery = num
			left++
		}
	}
	q.pend = append(q.pend, pendingDelivery{msg: d.Msg, seq: seq, left: left})
	var m jetstream.Msg
	n := 0
	if left == 0 {
		m, n = a.advance(q)
	}
	a.mu.Unlock()
	a.ack(m, n)
}

// advance drops q's done prefix and returns the message to acknowledge for
// it (nil: none), the one with the highest stream sequence (a redelivery
// of an earlier message may come after it), and how many deliveries it
// covers. Called with a.mu held.
func (a *Acks) advance(q *ackQueue) (jetstream.Msg, int) {
	var last jetstream.Msg
	var top uint64
	i := 0
	for ; i < len(q.pend) && q.pend[i].left == 0; i++ {
		if p := &q.pend[i]; last == nil || p.seq >= top {
			last, top = p.msg, p.seq
		}
	}
	if i > 0 {
		n := copy(q.pend, q.pend[i:])
		clear(q.pend[n:]) // let the acknowledged messages go
		q.pend = q.pend[:n]
		q.base += uint64(i)
	}
	if len(q.pend) == 0 && q != a.latest {
		delete(a.queues, q.num) // a replaced consumer, all acknowledged
	}
	return last, i
}

func (a *Acks) ack(m jetstream.Msg, n int) {
	if m == nil {
		return
	}
	if err := m.Ack(); err != nil {
		a.c.log.Warn("acknowledge messages; they will be delivered again and dropped as duplicates", "subject", m.Subject(), "err", err)
	}
	a.c.m.acked.Add(float64(n))
}

// Committed acknowledges what the commit of items (or their refusal for
// good, which a redelivery would not change) completes.
func (a *Acks) Committed(items []item.Item) {
	type ackMsg struct {
		m jetstream.Msg
		n int
	}
	var toAck []ackMsg
	var touched []*ackQueue
	var q *ackQueue
	a.mu.Lock()
	for i := range items {
		it := &items[i]
		if it.Delivery == 0 || !acked(it) {
			continue
		}
		if num := it.Delivery >> ackQueueShift; q == nil || q.num != num {
			if q = a.queues[num]; q == nil {
				continue // its consumer's queue is gone: settled already
			}
		}
		k := it.Delivery&(1<<ackQueueShift-1) - q.base
		if k >= uint64(len(q.pend)) || q.pend[k].left == 0 {
			continue // settled already (k wrapped below base, or a second report)
		}
		q.pend[k].left--
		if !slices.Contains(touched, q) {
			touched = append(touched, q)
		}
	}
	for _, q := range touched {
		if m, n := a.advance(q); m != nil {
			toAck = append(toAck, ackMsg{m, n})
		}
	}
	a.mu.Unlock()
	for _, m := range toAck {
		a.ack(m.m, m.n)
	}
}

// Waiting is how many messages wait for their items' commit.
func (a *Acks) Waiting() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, q := range a.queues {
		n += len(q.pend)
	}
	return n
}

// ParsePartitions reads a partition set such as "0-3,7" among n
// partitions; "" or "all" is every partition.
func ParsePartitions(s string, n int) ([]int, error) {
	if s == "" || s == "all" {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out, nil
	}
	seen := map[int]bool{}
	var out []int
	for _, f := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(f), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("partition %q: not a number", f)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("partition range %q: want LOW-HIGH", f)
			}
		}
		if a < 0 || b >= n {
			return nil, fmt.Errorf("partition %q: out of 0..%d", f, n-1)
		}
		for p := a; p <= b; p++ {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out, nil
}

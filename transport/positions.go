package transport

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// A processor reads all its partitions through one durable pull consumer
// whose filter subjects are those partitions' subjects. A consumer
// delivers in stream order and is acknowledged cumulatively (AckAll), and
// every message acknowledged on it was committed to the store (or was
// below the partition's position when the consumer was made: committed
// before). So for every partition in a consumer's filter, the consumer's
// ack floor + 1 is a position below which all of that partition is done.
//
// A consumer's filter only ever shrinks: partitions are never added to a
// running consumer. When a processor's set of partitions changes (it wins
// some, gives some back, or starts), it makes a new consumer for the whole
// new set:
//
//  1. every partition's position is the highest of its entry in the
//     positions bucket and the ack floor + 1 of every lookout consumer whose
//     filter holds it (the processor's own previous consumer, a dead
//     processor's, one whose owner lost its lease);
//  2. those positions are written to the positions bucket (never lowered);
//  3. the new consumer starts at the lowest of them and the messages of a
//     partition below its own position are acknowledged without being
//     handed on (they were done under the earlier consumer);
//  4. the partitions are taken out of the filters of the consumers that
//     held them; a consumer left without partitions is deleted.
//
// A crash between any two steps loses nothing: until step 4 the old
// consumers still hold the partitions with their floors, and after it the
// bucket holds the positions. What may come twice (messages in flight when
// a consumer is replaced, or acknowledged by an owner that lost its lease
// after its floor was read) is dropped by the store's (source, item id)
// key and by the processor's seen-set.

// PositionsBucket is the key-value bucket that keeps, per partition, the
// stream sequence from which it resumes when no consumer holds it.
func PositionsBucket(stream string) string { return stream + "_positions" }

const consumerPrefix = "lookout-"

// ConsumerName is the durable consumer of processor id's gen-th set of
// partitions.
func ConsumerName(id string, gen uint64) string {
	return consumerPrefix + safeID(id) + "-" + strconv.FormatUint(gen, 10)
}

func positionKey(p int) string { return "pos." + strconv.Itoa(p) }

// partitionOfSubject is the partition of an item subject.
func partitionOfSubject(s string) (int, bool) {
	rest, ok := strings.CutPrefix(s, SubjectPrefix)
	if !ok {
		return 0, false
	}
	p, err := strconv.Atoi(rest)
	return p, err == nil && p >= 0 && strconv.Itoa(p) == rest
}

// filterPartitions lists the partitions a consumer's filter holds (its
// FilterSubject or FilterSubjects).
func filterPartitions(cfg jetstream.ConsumerConfig) []int {
	subjects := cfg.FilterSubjects
	if cfg.FilterSubject != "" {
		subjects = []string{cfg.FilterSubject}
	}
	var out []int
	for _, s := range subjects {
		if p, ok := partitionOfSubject(s); ok {
			out = append(out, p)
		}
	}
	return out
}

// filterSubjects is the filter of a consumer over parts (filterPartitions
// reads it back).
func filterSubjects(parts []int) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = partitionSubject(p)
	}
	return out
}

// holders lists the lookout consumers of the stream, in one listing.
func (c *Conn) holders(ctx context.Context) ([]*jetstream.ConsumerInfo, error) {
	st, err := c.js.Stream(ctx, c.stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", c.stream, err)
	}
	var out []*jetstream.ConsumerInfo
	l := st.ListConsumers(ctx)
	for info := range l.Info() {
		if strings.HasPrefix(info.Name, consumerPrefix) {
			out = append(out, info)
		}
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("consumers of %s: %w", c.stream, err)
	}
	return out, nil
}

func (c *Conn) positionsKV(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      PositionsBucket(c.stream),
		Description: "lookout: the stream sequence each partition resumes from when no consumer holds it",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("partition positions bucket: %w", err)
	}
	return kv, nil
}

// advancePosition raises partition p's entry to seq (never lowers it) and
// returns the entry's value afterwards.
func advancePosition(ctx context.Context, kv jetstream.KeyValue, p int, seq uint64) (uint64, error) {
	for {
		e, err := kv.Get(ctx, positionKey(p))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			if seq == 0 {
				return 0, nil
			}
			if _, err := kv.Create(ctx, positionKey(p), []byte(strconv.FormatUint(seq, 10))); err == nil {
				return seq, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return 0, fmt.Errorf("position of partition %d: %w", p, err)
			}
			continue // written meanwhile: read it again
		case err != nil:
			return 0, fmt.Errorf("position of partition %d: %w", p, err)
		}
		cur, err := strconv.ParseUint(string(e.Value()), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("position of partition %d is %q, not a sequence", p, e.Value())
		}
		if cur >= seq {
			return cur, nil
		}
		if _, err := kv.Update(ctx, positionKey(p), []byte(strconv.FormatUint(seq, 10)), e.Revision()); err == nil {
			return seq, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("position of partition %d: %w", p, err)
		}
	}
}

// openConsumer makes the durable consumer name over parts (steps 1–4
// above) and returns it with every partition's position (0: from the
// start of the stream).
func (c *Conn) openConsumer(ctx context.Context, name string, parts []int, o ConsumeOptions) (jetstream.Consumer, map[int]uint64, error) {
	kv, err := c.positionsKV(ctx)
	if err != nil {
		return nil, nil, err
	}
	hs, err := c.holders(ctx)
	if err != nil {
		return nil, nil, err
	}
	// A consumer of this name left by an earlier attempt (or by this
	// processor's earlier life under the same id) is replaced below: its
	// partitions outside parts keep their positions in the bucket, since
	// no consumer will hold them.
	pos := make(map[int]uint64, len(parts))
	for _, h := range hs {
		for _, p := range filterPartitions(h.Config) {
			switch {
			case slices.Contains(parts, p):
				pos[p] = max(pos[p], h.AckFloor.Stream+1)
			case h.Name == name:
				if _, err := advancePosition(ctx, kv, p, h.AckFloor.Stream+1); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	start := uint64(0)
	for i, p := range parts {
		v, err := advancePosition(ctx, kv, p, pos[p])
		if err != nil {
			return nil, nil, err
		}
		pos[p] = v
		if i == 0 || v < start {
			start = v
		}
	}
	cfg := jetstream.ConsumerConfig{
		Durable:        name,
		FilterSubjects: filterSubjects(parts),
		AckPolicy:      jetstream.AckAllPolicy,
		AckWait:        o.AckWait,
		MaxAckPending:  o.MaxAckPending,
		MaxDeliver:     -1,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if start > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = start
	}
	// The consumer of this name, if any, is replaced: the positions above
	// account for it.
	if err := c.js.DeleteConsumer(ctx, c.stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, nil, fmt.Errorf("consumer %s: %w", name, err)
	}
	cons, err := c.js.CreateConsumer(ctx, c.stream, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("consumer %s: %w", name, err)
	}
	for _, h := range hs {
		if h.Name == name {
			continue
		}
		held := filterPartitions(h.Config)
		keep := slices.DeleteFunc(slices.Clone(held), func(p int) bool { return slices.Contains(parts, p) })
		if len(keep) == len(held) {
			continue
		}
		if err := c.shrink(ctx, h, keep); err != nil {
			// The old consumer keeps the partitions in its filter: a
			// later take-over reads the highest position, so this costs
			// only its upkeep.
			c.log.Warn("partitions not taken out of an earlier consumer", "consumer", h.Name, "err", err)
		}
	}
	return cons, pos, nil
}

// shrink leaves consumer h with the partitions keep, deleting it when
// none is left.
func (c *Conn) shrink(ctx context.Context, h *jetstream.ConsumerInfo, keep []int) error {
	if len(keep) == 0 {
		err := c.js.DeleteConsumer(ctx, c.stream, h.Name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		return err
	}
	cfg := h.Config
	cfg.FilterSubject = ""
	cfg.FilterSubjects = filterSubjects(keep)
	_, err := c.js.UpdateConsumer(ctx, c.stream, cfg)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	return err
}

package transport

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Assigner shares the partitions among the live processors through a
// JetStream key-value bucket whose entries expire after the lease:
//
//   - member.<id>: a processor's heartbeat, put every step;
//   - owner.<p>: the processor that owns partition p, created only when
//     absent and renewed every step with a compare-and-set on its revision.
//
// Each processor aims at its fair share, ceil(partitions / members): it
// claims free partitions while under it and gives back its highest ones
// while over it. A processor that dies stops renewing; its entries expire
// after the lease and the others claim its partitions on their next step.
// A processor that cannot renew (its entry expired or was taken) stops
// consuming that partition at once.
type Assigner struct {
	c     *Conn
	kv    jetstream.KeyValue
	id    string
	lease time.Duration
	step  time.Duration

	mu    sync.Mutex
	owned map[int]uint64 // partition → revision of its owner entry
}

// OwnersBucket is the key-value bucket of the partition leases of stream.
func OwnersBucket(stream string) string { return stream + "_owners" }

// NewAssigner joins the processors sharing the partitions as id (letters,
// digits, '-' and '_'; anything else becomes '_'). lease is how long an
// entry lives without renewal (default 6s); steps run at a sixth of it.
func (c *Conn) NewAssigner(ctx context.Context, id string, lease time.Duration) (*Assigner, error) {
	if lease <= 0 {
		lease = 6 * time.Second
	}
	kv, err := c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      OwnersBucket(c.stream),
		Description: "lookout: which processor owns which partition",
		TTL:         lease,
		History:     1,
		Storage:     jetstream.MemoryStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("partition owners bucket: %w", err)
	}
	return &Assigner{c: c, kv: kv, id: safeID(id), lease: lease, step: lease / 6, owned: map[int]uint64{}}, nil
}

func safeID(id string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, id)
}

// ID is the processor's name in the bucket.
func (a *Assigner) ID() string { return a.id }

func ownerKey(p int) string { return ownerPrefix + strconv.Itoa(p) }

const ownerPrefix = "owner."

// Owned lists the partitions held now, in order.
func (a *Assigner) Owned() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]int, 0, len(a.owned))
	for p := range a.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Run keeps this processor's membership and partitions current until ctx
// ends: gain(ps) is called once per step with every partition won in it
// (so that what a take-over needs is read once, and a processor makes one
// consumer for its new set), lose(ps) once per step with every partition
// lost or given back in it (before they are given back, so that the
// caller stops consuming first). Run does not release what it holds: call
// Release once the items consumed are committed.
func (a *Assigner) Run(ctx context.Context, gain func(ps []int), lose func(ps []int)) {
	t := time.NewTicker(a.step)
	defer t.Stop()
	for {
		if err := a.once(ctx, gain, lose); err != nil && ctx.Err() == nil {
			a.c.log.Warn("partition assignment step", "processor", a.id, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Assigner) once(ctx context.Context, gain func(ps []int), lose func(ps []int)) error {
	var won []int
	defer func() {
		if len(won) > 0 {
			gain(won)
		}
	}()
	if _, err := a.kv.Put(ctx, "member."+a.id, []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	// Renew what is held; whatever cannot be renewed is lost.
	var lost []int
	for _, p := range a.Owned() {
		a.mu.Lock()
		rev := a.owned[p]
		a.mu.Unlock()
		nrev, err := a.kv.Update(ctx, ownerKey(p), []byte(a.id), rev)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			a.c.log.Warn("partition lease lost", "processor", a.id, "partition", p, "err", err)
			lost = append(lost, p)
			a.mu.Lock()
			delete(a.owned, p)
			a.mu.Unlock()
			continue
		}
		a.mu.Lock()
		a.owned[p] = nrev
		a.mu.Unlock()
	}
	if len(lost) > 0 {
		lose(lost)
	}
	members, err := a.kv.Keys(ctx, jetstream.MetaOnly())
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("list members: %w", err)
	}
	n := 0
	for _, k := range members {
		if strings.HasPrefix(k, "member.") {
			n++
		}
	}
	share := (a.c.partitions + max(n, 1) - 1) / max(n, 1)
	owned := a.Owned()
	// Over the share (a processor joined): give back the highest, once
	// the caller stopped consuming them.
	if len(owned) > share {
		lose(owned[share:])
	}
	for len(owned) > share {
		p := owned[len(owned)-1]
		owned = owned[:len(owned)-1]
		a.mu.Lock()
		rev := a.owned[p]
		delete(a.owned, p)
		a.mu.Unlock()
		if err := a.kv.Delete(ctx, ownerKey(p), jetstream.LastRevision(rev)); err != nil {
			a.c.log.Warn("give partition back", "processor", a.id, "partition", p, "err", err)
		}
		a.c.log.Info("partition given back", "processor", a.id, "partition", p, "members", n)
	}
	// Under it: claim free partitions, lowest first.
	for p := 0; p < a.c.partitions && len(owned) < share; p++ {
		if slices.Contains(owned, p) {
			continue
		}
		rev, err := a.kv.Create(ctx, ownerKey(p), []byte(a.id))
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			return fmt.Errorf("claim partition %d: %w", p, err)
		}
		a.mu.Lock()
		a.owned[p] = rev
		a.mu.Unlock()
		owned = append(owned, p)
		a.c.log.Info("partition claimed", "processor", a.id, "partition", p, "members", n)
		won = append(won, p)
	}
	return nil
}

// Release gives back every partition held and leaves the members, so that
// the others take over without waiting for the lease to expire.
func (a *Assigner) Release(ctx context.Context) {
	a.mu.Lock()
	owned := a.owned
	a.owned = map[int]uint64{}
	a.mu.Unlock()
	for p, rev := range owned {
		if err := a.kv.Delete(ctx, ownerKey(p), jetstream.LastRevision(rev)); err != nil {
			a.c.log.Warn("release partition", "processor", a.id, "partition", p, "err", err)
		}
	}
	if err := a.kv.Delete(ctx, "member."+a.id); err != nil {
		a.c.log.Warn("leave the processors", "processor", a.id, "err", err)
	}
}

// owners reads who owns each partition ("" for none) in one listing of
// the bucket's owner entries; nil when no processor ever used the bucket.
func (c *Conn) owners(ctx context.Context) (map[int]string, error) {
	kv, err := c.js.KeyValue(ctx, OwnersBucket(c.stream))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	w, err := kv.Watch(ctx, ownerPrefix+"*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	out := map[int]string{}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("owner listing ended early")
			}
			if e == nil { // every current entry has been delivered
				return out, nil
			}
			p, err := strconv.Atoi(strings.TrimPrefix(e.Key(), ownerPrefix))
			if err != nil || p < 0 || p >= c.partitions {
				continue
			}
			out[p] = string(e.Value())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

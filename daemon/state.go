package daemon

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"lookout/item"
)

// pipelineState is the collectors' StateStore while the daemon runs. A
// write does not touch the database: it becomes a state item
// (item.KindState) on the collectors' channel, behind every item the
// collector emitted before it, and the store writer commits it in the
// same transaction as those items or a later one. A cursor, seen list or
// ETag therefore never becomes durable before the items it covers: a
// kill -9 loses both or neither, and the restarted collector fetches again
// what it had not stored.
//
// Reads return what this run queued, else what the database holds, so a
// collector sees its own writes whether or not the writer has committed
// them yet.
type pipelineState struct {
	st stateBackend

	mu     sync.Mutex
	queued map[string]string // source + "\x00" + key → value queued this run
	out    chan<- item.Item  // the collectors' channel; nil outside Run
}

// stateBackend is where the collectors' state lives: the store, or in the
// collect role the stream's key-value bucket (transport.StateStore).
type stateBackend interface {
	GetState(ctx context.Context, source, key string) (string, bool, error)
	PutStates(ctx context.Context, source string, kv map[string]string) error
}

func newPipelineState(st stateBackend) *pipelineState {
	return &pipelineState{st: st, queued: map[string]string{}}
}

// attach routes writes into out (Run calls it before any collector
// starts) or, with nil, straight to the database again.
func (p *pipelineState) attach(out chan<- item.Item) {
	p.mu.Lock()
	p.out = out
	p.mu.Unlock()
}

func (p *pipelineState) GetState(ctx context.Context, source, key string) (string, bool, error) {
	p.mu.Lock()
	v, ok := p.queued[source+"\x00"+key]
	p.mu.Unlock()
	if ok {
		return v, true, nil
	}
	return p.st.GetState(ctx, source, key)
}

func (p *pipelineState) PutState(ctx context.Context, source, key, value string) error {
	return p.PutStates(ctx, source, map[string]string{key: value})
}

// PutStates queues kv behind the caller's items. It blocks while the
// pipeline is full, like an emit, and fails only when ctx is done. Before
// Run (no item can have been emitted yet) it writes to the database.
func (p *pipelineState) PutStates(ctx context.Context, source string, kv map[string]string) error {
	if len(kv) == 0 {
		return nil
	}
	p.mu.Lock()
	out := p.out
	p.mu.Unlock()
	if out == nil {
		return p.st.PutStates(ctx, source, kv)
	}
	kv = maps.Clone(kv) // the caller may reuse its map; the writer reads this one later
	select {
	case out <- item.StateItem(source, kv):
	case <-ctx.Done():
		return fmt.Errorf("queue state of %s: %w", source, ctx.Err())
	}
	p.mu.Lock()
	for k, v := range kv {
		p.queued[source+"\x00"+k] = v
	}
	p.mu.Unlock()
	return nil
}

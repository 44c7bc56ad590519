package transport

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// StateStore keeps the collectors' state (cursors, seen ids, ETags) in a
// JetStream key-value bucket, so that a collect-role daemon can restart on
// another machine and carry on where the last one stopped. A source's
// state is one entry (its keys as a JSON object), written whole, so a
// write is atomic per source as it is in the store.
type StateStore struct {
	kv jetstream.KeyValue

	mu    sync.Mutex
	cache map[string]map[string]string // source → its state, as last read or written
}

// StateBucket is the key-value bucket of the collectors' state of stream.
func StateBucket(stream string) string { return stream + "_state" }

// NewStateStore opens (creating when absent) the state bucket.
func (c *Conn) NewStateStore(ctx context.Context) (*StateStore, error) {
	kv, err := c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      StateBucket(c.stream),
		Description: "lookout: collectors' state",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("collector state bucket: %w", err)
	}
	return &StateStore{kv: kv, cache: map[string]map[string]string{}}, nil
}

func stateKey(source string) string {
	return "source." + base64.RawURLEncoding.EncodeToString([]byte(source))
}

// load returns source's state, reading it from the bucket the first time.
// Called with s.mu held.
func (s *StateStore) load(ctx context.Context, source string) (map[string]string, error) {
	if m, ok := s.cache[source]; ok {
		return m, nil
	}
	m := map[string]string{}
	e, err := s.kv.Get(ctx, stateKey(source))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
	case err != nil:
		return nil, fmt.Errorf("read state of %s: %w", source, err)
	default:
		if err := json.Unmarshal(e.Value(), &m); err != nil {
			return nil, fmt.Errorf("state of %s is not a JSON object: %w", source, err)
		}
	}
	s.cache[source] = m
	return m, nil
}

// GetState returns source's value for key.
func (s *StateStore) GetState(ctx context.Context, source, key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load(ctx, source)
	if err != nil {
		return "", false, err
	}
	v, ok := m[key]
	return v, ok, nil
}

// PutStates sets kv in source's state and writes the state whole.
func (s *StateStore) PutStates(ctx context.Context, source string, kv map[string]string) error {
	if len(kv) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load(ctx, source)
	if err != nil {
		return err
	}
	next := maps.Clone(m)
	maps.Copy(next, kv)
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, stateKey(source), b); err != nil {
		return fmt.Errorf("write state of %s: %w", source, err)
	}
	s.cache[source] = next
	return nil
}

package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// WatchStats is what the dashboard's room streams delivered to the
// watchers during a run (Options.Watch).
type WatchStats struct {
	Streams int   `json:"streams"` // rooms watched, one stream each
	Sent    int64 `json:"sent"`    // messages pushed to the watched rooms
	// Updates counts the coalesced "update" events, Messages the feed
	// messages they carried (at most 40 each) and SliceMessages the chat
	// messages counted in their timeline slices: with the history loaded
	// before the push, every message pushed to a watched room is counted
	// there once.
	Updates       int64 `json:"updates"`
	Messages      int64 `json:"messages"`
	SliceMessages int64 `json:"slice_messages"`
	Bytes         int64 `json:"bytes"`
	// Reconnects counts streams that ended before the run did (the
	// dashboard drops a client too slow for its updates) and were opened
	// again after reloading the history, as a browser's EventSource does.
	Reconnects int64 `json:"reconnects"`
	// Errors counts failed history loads and stream opens.
	Errors int64 `json:"errors"`
}

// watchers are the browsers of a run: for each watched room the room
// page's history load, then its live stream read to the end.
type watchers struct {
	base   string // http://addr of the dashboard
	token  string
	client *http.Client
	log    *slog.Logger

	updates, messages, sliceMsgs, bytes, reconnects, errors atomic.Int64
	open                                                    sync.WaitGroup // streams not yet open
	wg                                                      sync.WaitGroup
	streams                                                 int
}

// startWatchers opens a stream for each room key (source, room) and
// returns once every stream is open (or ctx ends); the streams run until
// ctx ends.
func startWatchers(ctx context.Context, base, token string, rooms [][2]string, log *slog.Logger) *watchers {
	w := &watchers{base: base, token: token, log: log, streams: len(rooms),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: len(rooms) + 1}}}
	w.open.Add(len(rooms))
	for _, r := range rooms {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.watch(ctx, r[0], r[1])
		}()
	}
	opened := make(chan struct{})
	go func() { w.open.Wait(); close(opened) }()
	select {
	case <-opened:
	case <-ctx.Done():
	}
	return w
}

// stop waits for the streams, which end with the context they run under.
func (w *watchers) stop() WatchStats {
	w.wg.Wait()
	w.client.CloseIdleConnections()
	return w.stats()
}

func (w *watchers) stats() WatchStats {
	return WatchStats{Streams: w.streams, Updates: w.updates.Load(), Messages: w.messages.Load(),
		SliceMessages: w.sliceMsgs.Load(), Bytes: w.bytes.Load(), Reconnects: w.reconnects.Load(), Errors: w.errors.Load()}
}

// watch is one browser on a room's page: it loads the history, opens the
// stream after its last row and reads it until ctx ends; a stream that
// ends earlier is opened again, history first, after 2 s (the retry the
// stream asks for).
func (w *watchers) watch(ctx context.Context, source, room string) {
	q := url.Values{"source": {source}, "room": {room}}
	first := true
	signalOpen := func() {
		if first {
			first = false
			w.open.Done()
		}
	}
	defer signalOpen()
	for ctx.Err() == nil {
		if !first {
			w.reconnects.Add(1)
		}
		err := w.session(ctx, q, signalOpen)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.errors.Add(1)
			w.log.Warn("loadgen: room stream", "source", source, "room", room, "err", err)
		}
		signalOpen() // a stream that never opened does not hold the run back
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// session loads the history and reads one stream to its end.
func (w *watchers) session(ctx context.Context, q url.Values, opened func()) error {
	var h struct {
		LastID int64 `json:"last_id"`
	}
	if err := w.get(ctx, "/api/room?"+q.Encode(), func(body io.Reader) error { return json.NewDecoder(body).Decode(&h) }); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	q2 := url.Values{"source": q["source"], "room": q["room"], "after": {fmt.Sprint(h.LastID)}}
	return w.get(ctx, "/api/room/stream?"+q2.Encode(), func(body io.Reader) error {
		opened()
		return w.read(body)
	})
}

// read parses Server-Sent Events until the body ends.
func (w *watchers) read(body io.Reader) error {
	br := bufio.NewReaderSize(body, 64<<10)
	var event string
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A longer data line: read it whole.
			rest, err2 := br.ReadBytes('\n')
			line, err = append(append([]byte(nil), line...), rest...), err2
		}
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		w.bytes.Add(int64(len(line)))
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			event = ""
		case bytes.HasPrefix(line, []byte("event: ")):
			event = string(line[len("event: "):])
		case bytes.HasPrefix(line, []byte("data: ")) && event == "update":
			var u struct {
				Messages []json.RawMessage `json:"messages"`
				Slices   []struct {
					Messages int64 `json:"messages"`
				} `json:"slices"`
			}
			if err := json.Unmarshal(line[len("data: "):], &u); err != nil {
				return fmt.Errorf("update: %w", err)
			}
			w.updates.Add(1)
			w.messages.Add(int64(len(u.Messages)))
			for _, s := range u.Slices {
				w.sliceMsgs.Add(s.Messages)
			}
		}
	}
}

func (w *watchers) get(ctx context.Context, path string, read func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.base+path, nil)
	if err != nil {
		return err
	}
	if w.token != "" {
		req.Header.Set("Authorization", "Bearer "+w.token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return read(resp.Body)
}

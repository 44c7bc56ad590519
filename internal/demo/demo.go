// Package demo is `lookout demo`: it starts, on loopback, a live-room server
// that speaks the real Bilibili danmaku protocol, a news feed server and a
// brand forum, points the real daemon at them with an embedded config, plays
// a scripted show (a calm start, then a complaint storm while the audience
// leaves; midway the forum is redesigned under its scraper) and prints the
// alerts as they fire. Nothing leaves the machine.
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"text/template"
	"time"

	"lookout/config"
	"lookout/daemon"
	"lookout/internal/loopback"
	"lookout/store"
)

//go:embed demo.yaml
var demoConfig string

// Room is the demo live room's id.
const Room = 21452505

// Options configure a demo run.
type Options struct {
	Duration time.Duration // length of the show, default 40s
	DBPath   string        // default lookout-demo.db
	Out      io.Writer     // alerts and the summary
	Log      *slog.Logger  // daemon logs (default: warnings only, to stderr)
	// UIListen serves the live dashboard there while the show runs.
	UIListen string
	// Started, when set, is called with the daemon once it runs (tests).
	Started func(*daemon.Daemon)
}

// Config renders the embedded demo config for the given endpoints.
func Config(dbPath, biliURL, wsURL, feedURL, forumURL string) (*config.Config, error) {
	t, err := template.New("demo").Parse(demoConfig)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, map[string]any{"DB": dbPath, "BiliURL": biliURL, "WSURL": wsURL, "FeedURL": feedURL, "ForumURL": forumURL, "Room": Room}); err != nil {
		return nil, err
	}
	return config.Parse(buf.Bytes(), "demo.yaml (embedded)")
}

// Run plays the demo and returns when the show is over and the daemon has
// shut down cleanly.
func Run(ctx context.Context, opts Options) error {
	if opts.Duration <= 0 {
		opts.Duration = 40 * time.Second
	}
	if opts.Duration < 15*time.Second {
		return fmt.Errorf("demo: --duration must be at least 15s (the rules need a few windows)")
	}
	if opts.DBPath == "" {
		opts.DBPath = "lookout-demo.db"
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	// The show's narration and the console receiver write to the same
	// place from different goroutines.
	out := &demoLockedWriter{w: opts.Out}
	// A fresh database each run, so the summary shows this run only.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(opts.DBPath + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("demo: remove old %s: %w", opts.DBPath+suffix, err)
		}
	}

	live := loopback.NewBilibiliServer(loopback.BilibiliServerOptions{RoomID: Room})
	defer live.Close()
	feeds := loopback.NewFeedServer()
	defer feeds.Close()
	feeds.SetFeed("/acme/news.xml", newsFeed(time.Now()), "application/rss+xml; charset=utf-8")
	forum := loopback.NewHTMLSiteServer()
	defer forum.Close()
	forum.Add(forumPosts(time.Now())...)

	cfg, err := Config(opts.DBPath, live.URL(), live.WSURL(), feeds.URL("/acme/news.xml"), forum.URL+"/forum")
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	fmt.Fprintf(out, "lookout demo: a %s live-commerce show on loopback (Bilibili danmaku protocol, brotli frames) + a news feed + a brand forum\n", opts.Duration.Round(time.Second))
	fmt.Fprintf(out, "  room %d at %s · feed %s · forum %s · database %s\n\n", Room, live.URL(), feeds.URL("/acme/news.xml"), forum.URL+"/forum", opts.DBPath)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	d, err := daemon.New(runCtx, daemon.Options{Config: cfg, Log: opts.Log, Out: out, ShutdownGrace: 10 * time.Second, UIListen: opts.UIListen})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	if opts.UIListen != "" {
		fmt.Fprintf(out, "  dashboard: http://%s/ (the room view updates live; the show lasts %s: --duration for longer)\n\n", opts.UIListen, opts.Duration.Round(time.Second))
	}
	if opts.Started != nil {
		opts.Started(d)
	}

	showErr := play(runCtx, live, forum, opts.Duration, out)
	if showErr == nil {
		// The stream ends: the daemon reviews it and posts the review.
		fmt.Fprintf(out, "── %s the show ends (PREPARING): the daemon posts the stream's review\n", opts.Duration.Round(time.Second))
		live.Push(loopback.BilibiliPreparing(Room))
	}
	// Let the last windows evaluate before shutting down.
	select {
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
	}
	stop()
	if err := <-done; err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	if showErr != nil && ctx.Err() == nil {
		return showErr
	}
	return summary(context.WithoutCancel(ctx), out, opts.DBPath)
}

// play pushes the scripted show into the live room.
func play(ctx context.Context, live *loopback.BilibiliServer, forum *loopback.HTMLSiteServer, total time.Duration, out io.Writer) error {
	waitCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := live.WaitConnected(waitCtx, 1); err != nil {
		return fmt.Errorf("demo: the daemon did not connect to the live room: %w", err)
	}
	s := newShowScript(total)
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	seq := 0
	lastPhase := showPhase(-1)
	var lastViewers time.Time
	redesigned := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-tick.C:
			elapsed := now.Sub(start)
			if elapsed >= total {
				return nil
			}
			p := s.phase(elapsed)
			if p != lastPhase {
				fmt.Fprintf(out, "── %s %s\n", elapsed.Round(time.Second), [...]string{"show starts: calm chat, viewers rising", "complaint storm: refunds, fakes, ignored customers; viewers leaving", "the storm dies down; the room is half empty"}[p])
				lastPhase = p
			}
			if !redesigned && elapsed >= total/2 {
				redesigned = true
				forum.SetDrift(true)
				fmt.Fprintf(out, "── %s the brand forum ships a redesign: its page still answers, the scraper's selectors find nothing\n", elapsed.Round(time.Second))
			}
			var cmds [][]byte
			for range s.chatPerTick(p) {
				seq++
				uid, name := s.viewer()
				cmds = append(cmds, loopback.BilibiliDanmaku(uid, name, s.line(p), now, "demo-"+strconv.Itoa(seq)))
			}
			if p == phaseCalm && s.rnd.IntN(15) == 0 {
				uid, name := s.viewer()
				cmds = append(cmds, loopback.BilibiliGift(uid, name, "小心心", 1+s.rnd.IntN(5), 5000, now))
			}
			if now.Sub(lastViewers) >= time.Second {
				lastViewers = now
				cmds = append(cmds, loopback.BilibiliOnlineRankCount(s.viewers(elapsed)))
			}
			if len(cmds) > 0 {
				live.Push(cmds...)
			}
		}
	}
}

// summary prints what landed in SQLite and a query to paste.
func summary(ctx context.Context, out io.Writer, dbPath string) error {
	fmt.Fprintf(out, "\n── what landed in %s\n", dbPath)
	q := `SELECT kind, count(*) AS rows, sum(sentiment='negative') AS negative FROM items GROUP BY kind
	      UNION ALL
	      SELECT 'metric: ' || name, count(*), NULL FROM metrics GROUP BY name
	      ORDER BY rows DESC`
	if err := daemon.Query(ctx, dbPath, q, "table", store.QueryOptions{}, out); err != nil {
		return err
	}
	fmt.Fprintln(out)
	q = `SELECT rule, severity, state, room, started_at, resolved_at FROM alerts ORDER BY started_at`
	if err := daemon.Query(ctx, dbPath, q, "table", store.QueryOptions{}, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nAsk it anything with SQL, for example:\n  go run . query --db %s \"SELECT strftime('%%H:%%M:%%S', ts) AS t, author, text FROM items WHERE sentiment = 'negative' ORDER BY ts DESC LIMIT 10\"\n", dbPath)
	fmt.Fprintf(out, "or search what people said:\n  go run . search --db %s 退款\n", dbPath)
	return nil
}

// forumPosts are what the brand forum shows before its redesign.
func forumPosts(now time.Time) []loopback.HTMLPost {
	return []loopback.HTMLPost{
		{ID: 9001, Title: "直播间买的面霜到了", Author: "橙子酱", Time: now.Add(-2 * time.Hour), Body: "包装完好，用着不错。"},
		{ID: 9002, Title: "客服一直不回复", Author: "老王", Time: now.Add(-40 * time.Minute), Body: "申请退款三天了没人理，准备投诉。"},
	}
}

func newsFeed(now time.Time) []byte {
	return loopback.RSSDocument("Acme 品牌新闻", []loopback.FeedEntrySpec{
		{Title: "Acme 秋季新品发布会圆满落幕", Text: "新品口碑良好，首日销量创新高。", Link: "https://news.example.com/acme/1", Published: now.Add(-3 * time.Hour)},
		{Title: "Acme 直播间被曝光销售假货，消费者集体投诉", Text: "多名消费者反映在直播间购买的商品疑似假货，要求退款。", Link: "https://news.example.com/acme/2", Published: now.Add(-20 * time.Minute)},
		{Title: "Acme responds to customer complaints", Text: "The company says refunds will be processed within 7 days.", Link: "https://news.example.com/acme/3", Published: now.Add(-5 * time.Minute)},
	})
}

// demoLockedWriter serialises writes to w.
type demoLockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *demoLockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

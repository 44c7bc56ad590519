package ui_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"lookout/daemon"
	"lookout/internal/demo"
	"lookout/internal/testutil"
	"lookout/report"
)

// chromium finds a Chromium or Chrome binary; .ci/run installs Debian's
// chromium.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on PATH (install Debian's chromium package, as .ci/run does): the real-browser dashboard test cannot run")
	return ""
}

// TestBrowserDashboard plays the demo show with the dashboard on, opens it
// in headless Chromium and checks what a viewer sees: the room view's feed
// and charts fill and keep updating over Server-Sent Events, the overview
// lights the room, and clicking Silence and Acknowledge on a firing alert
// stores the silence and the acknowledgement in SQLite. Then it opens the
// HTML report of the same database offline and checks its charts and
// figures. With -update it writes the
// screenshots README shows to docs/.
func TestBrowserDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("plays a 45 s show in a real browser; skipped with -short")
	}
	exe := chromium(t)
	dbPath := filepath.Join(t.TempDir(), "demo.db")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var (
		mu  sync.Mutex
		d   *daemon.Daemon
		out bytes.Buffer
	)
	demoDone := make(chan error, 1)
	go func() {
		demoDone <- demo.Run(ctx, demo.Options{Duration: 45 * time.Second, DBPath: dbPath, Out: &lockedBuffer{b: &out, mu: &mu},
			UIListen: "127.0.0.1:0", Started: func(dd *daemon.Daemon) { mu.Lock(); d = dd; mu.Unlock() }})
	}()
	var base string
	testutil.Eventually(t, "the dashboard to listen", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		if d != nil && d.UIAddr() != "" {
			base = "http://" + d.UIAddr()
		}
		return base != ""
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 960), chromedp.Flag("lang", "en-US"))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	intJS := func(expr string) int {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](`String(`+expr+`)`))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		n, _ := strconv.Atoi(s)
		return n
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if len(png) < 1000 {
			t.Fatalf("screenshot %s is %d bytes", name, len(png))
		}
		if testutil.Updating() {
			if err := os.WriteFile(filepath.Join("..", "docs", name), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The room view: history first, then live updates.
	run("open the room view", chromedp.Navigate(base+"/room?source=brand-live&room="+strconv.Itoa(demo.Room)),
		chromedp.WaitVisible(chromedp.CSS("#feed li")))
	testutil.Eventually(t, "the live stream to connect", 15*time.Second, func() bool {
		return intJS(`document.getElementById('conn').classList.contains('on') ? 1 : 0`) == 1
	})
	firstUpdates := intJS(`+document.getElementById('room').dataset.updates || 0`)
	firstTop := intJS(`+document.querySelector('#feed li:last-child').dataset.id`)
	testutil.Eventually(t, "the feed to grow through live updates", 20*time.Second, func() bool {
		return intJS(`+document.getElementById('room').dataset.updates || 0`) >= firstUpdates+3 &&
			intJS(`+document.querySelector('#feed li:last-child').dataset.id`) > firstTop
	})
	testutil.Eventually(t, "both charts to have data", 20*time.Second, func() bool {
		return intJS(`+document.getElementById('chart-rate').dataset.bars || 0`) >= 2 &&
			intJS(`+document.getElementById('chart-viewers').dataset.points || 0`) >= 2
	})
	// Updates are coalesced: a few per second, never one per message.
	before := intJS(`+document.getElementById('room').dataset.updates || 0`)
	msgsBefore := intJS(`+document.querySelector('#feed li:last-child').dataset.id`)
	time.Sleep(2 * time.Second) // a span to count events over, not a wait for a condition
	updates := intJS(`+document.getElementById('room').dataset.updates || 0`) - before
	msgs := intJS(`+document.querySelector('#feed li:last-child').dataset.id`) - msgsBefore
	if updates > 8 {
		t.Errorf("%d updates in 2 s: the stream should coalesce to a few per second", updates)
	}
	if msgs > 0 && updates >= msgs {
		t.Errorf("%d updates for %d new rows: updates are not coalesced", updates, msgs)
	}

	// Wait for the storm: a firing alert to silence.
	testutil.Eventually(t, "a firing alert with a Silence button", 60*time.Second, func() bool {
		return intJS(`document.querySelectorAll('#alerts li').length`) > 0
	})
	run("open the overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(".card")))
	testutil.Eventually(t, "the live room's light to turn red or yellow", 30*time.Second, func() bool {
		return intJS(`document.querySelectorAll('.card[data-source="brand-live"].light-red, .card[data-source="brand-live"].light-yellow').length`) == 1
	})
	shot("dashboard-overview.png")

	var alertID string
	testutil.Eventually(t, "the alerts page to offer a silence", 30*time.Second, func() bool {
		run("open alerts", chromedp.Navigate(base+"/alerts"), chromedp.WaitReady(chromedp.CSS("main")))
		return intJS(`document.querySelectorAll('form.silence-form').length`) > 0
	})
	res, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS(`form.silence-form input[name=alert]`), "value"))
	if err != nil || res.Value == "" {
		t.Fatalf("read the alert id: %q %v", res.Value, err)
	}
	alertID = res.Value
	shot("dashboard-alerts.png")
	run("click Silence", chromedp.SetValue(chromedp.CSS(`form.silence-form input[name=comment]`), "on it: refund queue"),
		chromedp.Click(chromedp.CSS(`form.silence-form .silence-btn`)),
		chromedp.WaitVisible(chromedp.CSS("#flash")))

	db, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rule, room, matchers, comment, by string
	if err := db.QueryRow(`SELECT rule, room FROM alerts WHERE id = ?`, alertID).Scan(&rule, &room); err != nil {
		t.Fatalf("alert %s: %v", alertID, err)
	}
	testutil.Eventually(t, "the silence in SQLite", 10*time.Second, func() bool {
		err := db.QueryRow(`SELECT matchers, comment, created_by FROM silences WHERE expired_at IS NULL ORDER BY created_at DESC LIMIT 1`).Scan(&matchers, &comment, &by)
		return err == nil
	})
	if !strings.Contains(matchers, `rule=\"`+rule+`\"`) || !strings.Contains(matchers, `room=\"`+room+`\"`) || comment != "on it: refund queue" || by != "dashboard" {
		t.Errorf("stored silence %s (%q by %q), want rule %q and room %q", matchers, comment, by, rule, room)
	}
	// The page now shows the alert as silenced.
	if n := intJS(`document.querySelectorAll('article[data-alert="` + alertID + `"] form.silence-form').length`); n != 0 {
		t.Errorf("alert %s still offers Silence after it was silenced", alertID)
	}

	// Acknowledge it too: the button is on the same card.
	run("click Acknowledge", chromedp.Click(chromedp.CSS(`article[data-alert="`+alertID+`"] form.ack-form .ack-btn`)))
	var ackBy string
	testutil.Eventually(t, "the acknowledgement in SQLite", 10*time.Second, func() bool {
		return db.QueryRow(`SELECT acked_by FROM alerts WHERE id = ? AND acked_at IS NOT NULL`, alertID).Scan(&ackBy) == nil
	})
	if ackBy != "dashboard" {
		t.Errorf("alert %s acknowledged by %q, want dashboard", alertID, ackBy)
	}
	testutil.Eventually(t, "the page to show the acknowledgement", 10*time.Second, func() bool {
		return intJS(`document.querySelectorAll('article[data-alert="`+alertID+`"] .badge.acked').length`) == 1 &&
			intJS(`document.querySelectorAll('article[data-alert="`+alertID+`"] form.ack-form').length`) == 0
	})

	// Back to the room, deep in the storm, for README's picture.
	run("reopen the room view", chromedp.Navigate(base+"/room?source=brand-live&room="+strconv.Itoa(demo.Room)),
		chromedp.WaitVisible(chromedp.CSS("#alerts li")))
	testutil.Eventually(t, "the reopened room to stream", 15*time.Second, func() bool {
		return intJS(`+document.getElementById('room').dataset.updates || 0`) >= 2
	})
	shot("dashboard-room.png")

	// Chinese follows the browser's language (here forced with ?lang=).
	run("open the overview in Chinese", chromedp.Navigate(base+"/?lang=zh"))
	h1, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("h1")))
	if err != nil {
		t.Fatal(err)
	}
	if h1 != "总览" {
		t.Errorf("Chinese overview heading %q, want 总览", h1)
	}

	if err := <-demoDone; err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}

	// The report of the show, opened from a file with no network.
	r, err := report.Build(ctx, dbPath, report.Options{Room: strconv.Itoa(demo.Room), From: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := report.RenderHTML(&page, r); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sel := `section[data-room="` + strconv.Itoa(demo.Room) + `"] `
	run("open the report", chromedp.Navigate("file://"+file))
	shown, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel+`[data-kpi=messages]`)))
	if err != nil {
		t.Fatal(err)
	}
	var want int
	if err := db.QueryRow(`SELECT count(*) FROM items WHERE room = ? AND kind IN ('chat','comment','post','superchat')`, strconv.Itoa(demo.Room)).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if shown != report.Count(float64(want)) {
		t.Errorf("report shows %s messages, SQL counts %d", shown, want)
	}
	if n := intJS(`document.querySelectorAll('` + sel + `svg.chart polyline').length`); n < 2 {
		t.Errorf("report room has %d chart lines, want the audience curve and the negative share", n)
	}
	if n := intJS(`document.querySelectorAll('` + sel + `svg.chart rect.neg').length`); n == 0 {
		t.Error("report's sentiment chart has no negative bars after a complaint storm")
	}
	shot("report.png")
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

package httpx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/temoto/robotstxt"
)

// ErrRobotsDisallowed is what a request robots.txt forbids fails with
// (wrapped in a *RobotsError).
var ErrRobotsDisallowed = errors.New("disallowed by robots.txt")

// RobotsError says a request was not sent because the site's robots.txt
// forbids it to lookout's User-Agent.
type RobotsError struct {
	URL   string
	Agent string
}

func (e *RobotsError) Error() string {
	return fmt.Sprintf("%s: not fetched: robots.txt disallows it for %q (set ignore_robots: true on the source only if the site owner agrees)", RedactURL(e.URL), e.Agent)
}

func (e *RobotsError) Unwrap() error { return ErrRobotsDisallowed }

// robotsEntry is one site's robots.txt as fetched; ready is closed once
// data is set, so that concurrent requests to a new site fetch it once.
type robotsEntry struct {
	ready   chan struct{}
	data    *robotstxt.RobotsData // nil: no usable file, everything allowed
	expires time.Time
}

// robotsRetry is how soon a robots.txt that could not be fetched (network
// error, redirect loop) is tried again; meanwhile the site counts as
// allowing everything, as it would if it had none.
const robotsRetry = 5 * time.Minute

// maxRobotsBytes caps a robots.txt (Google reads the first 500 KiB).
const maxRobotsBytes = 512 << 10

// robotsAllow checks u against its site's robots.txt, fetching it when the
// cache has none or an expired one. A robots.txt answering 4xx allows
// everything, 5xx forbids everything until it is fetched again (both as
// Google's crawler does); one that cannot be fetched or parsed allows
// everything.
//
// inFlight says the caller already holds a slot under the concurrency cap
// (a redirect hop): the robots.txt request then does not wait for another,
// which with max_concurrency 1 would never come.
func (c *Client) robotsAllow(ctx context.Context, u *url.URL, inFlight bool) error {
	site := u.Scheme + "://" + u.Host
	e, err := c.robotsFor(ctx, site, inFlight)
	if err != nil {
		return err
	}
	if e.data == nil {
		return nil
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	if e.data.TestAgent(path, c.ua) {
		return nil
	}
	return &RobotsError{URL: u.String(), Agent: c.ua}
}

// robotsFor returns site's cached robots.txt, fetching it if needed.
func (c *Client) robotsFor(ctx context.Context, site string, inFlight bool) (*robotsEntry, error) {
	h := c.hosts
	for {
		h.mu.Lock()
		e, ok := h.robots[site]
		if ok {
			select {
			case <-e.ready:
				if c.clock.Now().Before(e.expires) {
					h.mu.Unlock()
					return e, nil
				}
			default:
				h.mu.Unlock()
				select { // another request is fetching it
				case <-e.ready:
					continue
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
		}
		e = &robotsEntry{ready: make(chan struct{})}
		h.robots[site] = e
		h.mu.Unlock()
		data, ttl := c.fetchRobots(ctx, site, inFlight)
		h.mu.Lock()
		e.data, e.expires = data, c.clock.Now().Add(ttl)
		close(e.ready)
		h.mu.Unlock()
		return e, nil
	}
}

// fetchRobots gets site/robots.txt through the host's token bucket and
// (unless inFlight) the concurrency cap, and says how long to trust the
// answer.
func (c *Client) fetchRobots(ctx context.Context, site string, inFlight bool) (*robotstxt.RobotsData, time.Duration) {
	log := c.log.With("robots", site+"/robots.txt")
	u, _ := url.Parse(site + "/robots.txt")
	if inFlight {
		if err := c.Limiter(u.Host).Wait(ctx); err != nil {
			return nil, 0
		}
	} else {
		release, err := c.Wait(ctx, u.Host)
		if err != nil {
			return nil, 0
		}
		defer release()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, robotsRetry
	}
	req.Header.Set("User-Agent", c.ua)
	req.Header.Set("Accept", "text/plain,*/*;q=0.5")
	hc := *c.base
	hc.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		return nil
	}
	resp, err := hc.Do(req)
	if err != nil {
		log.Info("robots.txt unreachable; allowing all until it is tried again", "err", redactErr(err, u.String()), "retry_in", robotsRetry)
		c.metrics.Requests.WithLabelValues(u.Host, "error").Inc()
		return nil, robotsRetry
	}
	defer resp.Body.Close()
	c.metrics.Requests.WithLabelValues(u.Host, fmt.Sprint(resp.StatusCode)).Inc()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRobotsBytes))
	if err != nil {
		return nil, robotsRetry
	}
	data, err := robotstxt.FromStatusAndBytes(resp.StatusCode, body)
	if err != nil {
		log.Info("robots.txt unreadable; allowing all", "status", resp.StatusCode, "err", err)
		return nil, c.hosts.robotsTTL
	}
	if resp.StatusCode >= 500 {
		// Full disallow, but only until the server is back.
		return data, robotsRetry
	}
	return data, c.hosts.robotsTTL
}

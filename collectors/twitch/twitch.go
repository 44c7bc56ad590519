// Package twitch is the twitch collector: anonymous chat over IRC over
// WebSocket and, optionally, live status and viewers from the Helix API.
package twitch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"lookout/collectors"
	"lookout/collectors/httpx"
	"lookout/collectors/stream"
	"lookout/config"
	"lookout/item"
)

// The twitch collector reads Twitch chat anonymously over IRC-over-WebSocket:
// one connection, CAP REQ for tags and commands, NICK
// justinfan<digits>, JOIN of every configured channel, PING answered with
// PONG, RECONNECT honoured by reconnecting (the old connection is read until
// the new one has joined, so a server restart loses no chat).
//
// No live_status comes from the chat: nothing in Twitch IRC says that a
// stream went live or offline. ROOMSTATE carries chat settings (slow mode,
// followers-only…), and HOSTTARGET only ever told of hosting, now retired.
// Stream state and viewer counts are in the Helix API, which needs an app
// access token: with a `helix:` block (see helix.go) the collector polls
// it beside the chat, and a stream's end starts its review.
//
//	- id: twitch-shroud
//	  kind: twitch
//	  channels: [shroud, pokimane]
//	  url: wss://irc-ws.chat.twitch.tv:443   # default
//	  bit_value: 0.07                        # CNY per bit for gift items (default)
//	  usd_cny: 7                             # CNY per US dollar for subscriptions (default)
//	  helix:                                 # optional: live status and viewers (helix.go)
//	    client_id: ${TWITCH_CLIENT_ID}
//	    client_secret: ${TWITCH_CLIENT_SECRET}

// TwitchDefaultURL is Twitch's IRC-over-WebSocket endpoint.
const TwitchDefaultURL = "wss://irc-ws.chat.twitch.tv:443"

const (
	// twitchReadTimeout: Twitch PINGs about every five minutes, so a
	// connection silent for longer than this is dead.
	twitchReadTimeout = 6 * time.Minute
	// twitchJoinBatch channels per JOIN, and twitchJoinPause between batches,
	// keep under the documented 20 joins per 10 s.
	twitchJoinBatch = 20
	twitchJoinPause = 11 * time.Second
	// twitchDefaultBitValue is about one US cent, what Twitch pays the
	// creator per bit, in CNY (item.Value for gifts is in CNY).
	twitchDefaultBitValue = 0.07
	// twitchDefaultUSDCNY converts subscription prices (US dollars) to CNY.
	twitchDefaultUSDCNY = 7.0
)

type twitchSpec struct {
	URL      string   `yaml:"url"`
	Channels []string `yaml:"channels"`
	// Nick overrides the anonymous justinfan<digits> login; it must still be
	// a justinfan nick because the collector never authenticates.
	Nick     string  `yaml:"nick"`
	BitValue float64 `yaml:"bit_value"`
	// USDCNY converts subscription list prices (US dollars) to CNY, the
	// unit of every gift's value; default 7, which also makes the default
	// bit_value (0.07) one US cent.
	USDCNY float64 `yaml:"usd_cny"`
	// Helix, when set, polls the Helix API for live status and viewers.
	Helix *helixSpec `yaml:"helix"`
}

var (
	twitchChannelRe = regexp.MustCompile(`^[a-z0-9_]{1,25}$`)
	twitchNickRe    = regexp.MustCompile(`^justinfan[0-9]{1,10}$`)
)

type twitchCollector struct {
	id       string
	labels   map[string]string
	env      collectors.Env
	url      string
	channels []string
	nick     string
	bitValue float64
	usdCNY   float64
	dialer   *websocket.Dialer
	header   http.Header
	helix    *helixPoller // nil without a helix: block

	// handover and draining belong to Run's goroutine: the channel the
	// next session closes once joined (set when RECONNECT handed the old
	// connection to a drain), and the drains still reading.
	handover chan struct{}
	draining sync.WaitGroup
}

// New builds a twitch source (a collectors.Factory).
func New(src config.SourceConfig, env collectors.Env) (collectors.Collector, error) {
	var spec twitchSpec
	if err := src.DecodeSpec(&spec); err != nil {
		return nil, err
	}
	if spec.URL == "" {
		spec.URL = TwitchDefaultURL
	}
	u, err := url.Parse(spec.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("url %q: want a ws:// or wss:// URL", spec.URL)
	}
	if len(spec.Channels) == 0 {
		return nil, errors.New("channels: list at least one channel login")
	}
	seen := map[string]bool{}
	var channels []string
	for _, ch := range spec.Channels {
		ch = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(ch), "#"))
		if !twitchChannelRe.MatchString(ch) {
			return nil, fmt.Errorf("channels: %q is not a Twitch login (a-z, 0-9, _; up to 25)", ch)
		}
		if !seen[ch] {
			seen[ch] = true
			channels = append(channels, ch)
		}
	}
	nick := spec.Nick
	if nick == "" {
		nick = "justinfan" + strconv.Itoa(10000+rand.IntN(89999))
	} else if !twitchNickRe.MatchString(nick) {
		return nil, fmt.Errorf("nick %q: anonymous read needs justinfan<digits>", nick)
	}
	if spec.BitValue < 0 {
		return nil, fmt.Errorf("bit_value %v: must not be negative", spec.BitValue)
	}
	if spec.BitValue == 0 {
		spec.BitValue = twitchDefaultBitValue
	}
	if spec.USDCNY < 0 {
		return nil, fmt.Errorf("usd_cny %v: must not be negative", spec.USDCNY)
	}
	if spec.USDCNY == 0 {
		spec.USDCNY = twitchDefaultUSDCNY
	}
	dialer, header, err := stream.Dialer(src, env)
	if err != nil {
		return nil, err
	}
	var helix *helixPoller
	if spec.Helix != nil {
		if err := spec.Helix.check(src); err != nil {
			return nil, err
		}
		if helix, err = newHelixPoller(src, env, *spec.Helix, channels); err != nil {
			return nil, err
		}
	}
	return &twitchCollector{
		id: src.ID, labels: src.Labels, env: env, url: spec.URL, channels: channels,
		nick: nick, bitValue: spec.BitValue, usdCNY: spec.USDCNY, dialer: dialer, header: header, helix: helix,
	}, nil
}

var errTwitchReconnect = fmt.Errorf("server asked to reconnect (RECONNECT): %w", collectors.ErrPlannedEnd)

// twitchHandoverMax bounds how long a connection that got RECONNECT keeps
// being read while its successor joins: Twitch closes it about 30 s after.
const twitchHandoverMax = 30 * time.Second

func (c *twitchCollector) Run(ctx context.Context, emit collectors.Emit) error {
	defer c.draining.Wait()
	if c.helix != nil {
		// The Helix poller runs beside the chat and stops with it; its
		// failures never end the chat.
		hctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.helix.run(hctx, emit)
		}()
		defer func() {
			cancel()
			<-done
		}()
	}
	return stream.Reconnect(ctx, c.env, c.id, "twitch", func(ctx context.Context) (bool, error) { return c.session(ctx, emit) },
		nil, func(err error, wait time.Duration) time.Duration {
			if errors.Is(err, errTwitchReconnect) {
				return 0 // planned server restart: come straight back
			}
			return wait
		})
}

// session runs one connection. healthy reports whether the server accepted
// the login, which resets the backoff.
//
// RECONNECT announces a server restart. Instead of dropping the old
// connection at once (and the chat said until the new one has joined), the
// session hands it to a drain goroutine that keeps reading it until the
// next session has joined every channel, then returns so that the next
// session starts at once. Lines both connections deliver are the same
// messages with the same ids; the pipeline drops the second copy.
func (c *twitchCollector) session(ctx context.Context, emit collectors.Emit) (healthy bool, err error) {
	// Tell the connection this one replaces, if any, when we have joined
	// (or given up).
	joined := c.handover
	c.handover = nil
	if joined == nil {
		joined = make(chan struct{})
	}
	joinedOnce := false
	markJoined := func() {
		if !joinedOnce {
			joinedOnce = true
			close(joined)
		}
	}
	defer func() {
		// Never joined: a connection being drained stays with the next
		// session (one that fails to connect must not cut the old one).
		switch {
		case joinedOnce:
		case c.handover == nil:
			c.handover = joined
		default:
			close(joined)
		}
	}()

	conn, err := stream.Dial(ctx, c.env, c.dialer, c.url, c.header)
	if err != nil {
		c.env.Metrics.Errors.WithLabelValues(c.id, "dial").Inc()
		return false, err
	}
	handedOff := false
	defer func() {
		if !handedOff {
			_ = conn.Close()
		}
	}()
	stopWatch := stream.CloseOnDone(ctx, conn)
	defer func() {
		if !handedOff {
			stopWatch()
		}
	}()
	conn.SetReadLimit(stream.MaxFrame)

	w := &twitchWriter{conn: conn, mu: make(chan struct{}, 1)}
	for _, l := range []string{"CAP REQ :twitch.tv/tags twitch.tv/commands", "NICK " + c.nick} {
		if err := w.send(l); err != nil {
			return false, fmt.Errorf("send %q: %w", l, err)
		}
	}
	// JOINs go out from a goroutine of this session so that a long channel
	// list (paced under the join limit) does not hold up reading.
	joinCtx, cancelJoin := context.WithCancel(ctx)
	joinErr := make(chan error, 1)
	joinDone := make(chan struct{})
	defer func() {
		cancelJoin()
		if !handedOff {
			_ = conn.Close() // unblocks a JOIN write in flight
		}
		<-joinDone
	}()
	go func() {
		defer close(joinDone)
		for i := 0; i < len(c.channels); i += twitchJoinBatch {
			if i > 0 {
				if err := httpx.Sleep(joinCtx, c.env.Clock, twitchJoinPause); err != nil {
					return
				}
			}
			batch := c.channels[i:min(i+twitchJoinBatch, len(c.channels))]
			if err := w.send("JOIN #" + strings.Join(batch, ",#")); err != nil {
				joinErr <- fmt.Errorf("send JOIN: %w", err)
				return
			}
		}
	}()

	in := map[string]bool{}
	onJoin := func(channel string) {
		in[channel] = true
		if len(in) == len(c.channels) {
			markJoined()
		}
	}
	healthy, err = c.read(ctx, conn, w, emit, joinErr, onJoin)
	if !errors.Is(err, errTwitchReconnect) || ctx.Err() != nil {
		return healthy, err
	}
	// Keep the old connection until the next session has joined. The
	// JOIN goroutine stops first: it must not write to a connection the
	// drain owns.
	cancelJoin()
	<-joinDone
	handedOff = true
	next := make(chan struct{})
	c.handover = next
	c.draining.Add(1)
	go func() {
		defer c.draining.Done()
		defer conn.Close()
		defer stopWatch()
		c.drain(ctx, conn, w, emit, next)
	}()
	return healthy, err
}

// drain reads a connection that got RECONNECT until the next session has
// joined (next closed), Twitch closes it, ctx ends or twitchHandoverMax.
func (c *twitchCollector) drain(ctx context.Context, conn *websocket.Conn, w *twitchWriter, emit collectors.Emit, next <-chan struct{}) {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTimer(twitchHandoverMax)
		defer t.Stop()
		select {
		case <-next:
		case <-t.C:
		case <-stop:
			return
		}
		_ = conn.Close() // ends the read below
	}()
	_, err := c.read(ctx, conn, w, emit, nil, func(string) {})
	c.env.Log.Debug("twitch: old connection drained after RECONNECT", "err", err)
}

// twitchWriter serialises writes: gorilla allows one writer at a time, and
// the reader (PONG) and the JOIN goroutine both write.
type twitchWriter struct {
	conn *websocket.Conn
	mu   chan struct{}
}

func (w *twitchWriter) send(line string) error {
	w.mu <- struct{}{}
	defer func() { <-w.mu }()
	_ = w.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return w.conn.WriteMessage(websocket.TextMessage, []byte(line))
}

// read reads and handles frames until the connection fails, the server
// says RECONNECT (errTwitchReconnect) or refuses the login. onJoin hears
// of every channel the server confirms we joined.
func (c *twitchCollector) read(ctx context.Context, conn *websocket.Conn, w *twitchWriter, emit collectors.Emit,
	joinErr <-chan error, onJoin func(channel string)) (healthy bool, err error) {
	var rd stream.Reader // this connection's message buffer and read deadline
	counted := c.env.Metrics.ItemCounter(c.id)
	for {
		select {
		case err := <-joinErr:
			if err != nil {
				return healthy, err
			}
		default:
		}
		rd.ExtendDeadline(conn, time.Now(), twitchReadTimeout)
		typ, data, err := rd.Read(conn) // data is reused: the lines below are cut from a copy
		if err != nil {
			if ctx.Err() != nil {
				return healthy, ctx.Err()
			}
			c.env.Metrics.Errors.WithLabelValues(c.id, "read").Inc()
			return healthy, fmt.Errorf("read: %w", err)
		}
		if typ != websocket.TextMessage {
			c.env.Metrics.Unknown.WithLabelValues(c.id, "binary_frame").Inc()
			continue
		}
		// One frame may carry several IRC lines.
		for rest := string(data); rest != ""; {
			var line string
			if i := strings.Index(rest, "\n"); i >= 0 {
				line, rest = rest[:i], rest[i+1:]
			} else {
				line, rest = rest, ""
			}
			line = strings.TrimRight(line, "\r")
			if line == "" {
				continue
			}
			m, err := twitchParseLine(line)
			if err != nil {
				c.env.Metrics.Errors.WithLabelValues(c.id, "parse").Inc()
				c.env.Log.Warn("twitch: bad IRC line", "err", err, "line", stream.Trunc(line, 200))
				c.env.Health.Unusable("parse", err)
				continue
			}
			switch m.Command {
			case "PING":
				if err := w.send("PONG :" + m.Trailing()); err != nil {
					return healthy, fmt.Errorf("send PONG: %w", err)
				}
				continue
			case "RECONNECT":
				return healthy, errTwitchReconnect
			case "001":
				healthy = true
				c.env.Health.Succeeded() // the login was accepted
			case "JOIN":
				if m.Nick() == c.nick {
					onJoin(strings.TrimPrefix(m.Param(0), "#"))
				}
				continue
			case "NOTICE":
				// "Login authentication failed", "msg_channel_suspended", …
				c.env.Log.Warn("twitch notice", "channel", strings.TrimPrefix(m.Param(0), "#"), "msg_id", m.Tag("msg-id"), "text", m.Trailing())
				if strings.Contains(m.Trailing(), "authentication failed") {
					c.env.Metrics.Errors.WithLabelValues(c.id, "auth").Inc()
					return false, collectors.WithReason("auth", true, fmt.Errorf("twitch refused the login: %s", m.Trailing()))
				}
				continue
			}
			items := c.mapMessage(m, line)
			for i := range items {
				stream.CapItem(c.env, c.id, &items[i], len(line))
				if err := emit(ctx, items[i]); err != nil {
					return healthy, err
				}
				counted.Inc(items[i].Kind)
			}
		}
	}
}

// mapMessage turns one parsed line into items (none for protocol chatter).
func (c *twitchCollector) mapMessage(m twitchMsg, line string) []item.Item {
	switch m.Command {
	case "PRIVMSG", "USERNOTICE":
		if len(m.Param(0)) < 2 || m.Param(0)[0] != '#' {
			c.env.Metrics.Errors.WithLabelValues(c.id, "parse").Inc()
			c.env.Log.Warn("twitch: message without a #channel", "line", stream.Trunc(line, 200))
			return nil
		}
	}
	switch m.Command {
	case "PRIVMSG":
		return c.mapPrivmsg(m, line)
	case "USERNOTICE":
		return c.mapUsernotice(m, line)
	case "CLEARMSG", "CLEARCHAT":
		return c.mapModeration(m, line)
	case "ROOMSTATE", "USERSTATE", "GLOBALUSERSTATE", "CAP", "JOIN", "PART", "PING", "PONG", "NOTICE", "RECONNECT", "001",
		"HOSTTARGET", "WHISPER", "002", "003", "004", "353", "366", "372", "375", "376", "421":
		return nil
	}
	c.env.Metrics.Unknown.WithLabelValues(c.id, "cmd:"+stream.Trunc(m.Command, 32)).Inc()
	return nil
}

// twitchBaseTags are the tags every item reads, fetched in one pass.
var twitchBaseTags = [...]string{"id", "user-id", "display-name", "login", "tmi-sent-ts", "bits"}

func (c *twitchCollector) base(m twitchMsg, line string) (item.Item, string) {
	var v [len(twitchBaseTags)]string
	m.tags(twitchBaseTags[:], v[:])
	it := item.Item{
		Source:   c.id,
		Platform: "twitch",
		Room:     strings.TrimPrefix(m.Param(0), "#"),
		ID:       twitchUnescapeTag(v[0]),
		AuthorID: twitchUnescapeTag(v[1]),
		Author:   twitchUnescapeTag(v[2]),
		Labels:   c.labels,
		Raw:      []byte(line),
	}
	if it.Author == "" {
		it.Author = twitchUnescapeTag(v[3])
	}
	if it.Author == "" {
		it.Author = m.Nick()
	}
	if ms, err := strconv.ParseInt(v[4], 10, 64); err == nil && ms > 0 {
		it.TS = time.UnixMilli(ms).UTC()
	} else {
		it.TS = c.env.Clock.Now().UTC()
	}
	if it.ID == "" {
		// Without the tags capability there is no message id; this one is
		// stable for a given line.
		it.ID = fmt.Sprintf("%s/%s/%d", it.Room, it.Author, it.TS.UnixMilli())
	}
	return it, v[5]
}

func (c *twitchCollector) mapPrivmsg(m twitchMsg, line string) []item.Item {
	it, bitsTag := c.base(m, line)
	it.Kind = item.KindChat
	it.Text = m.Param(1)
	if strings.HasPrefix(it.Text, "\x01ACTION ") { // /me
		it.Text = strings.TrimSuffix(strings.TrimPrefix(it.Text, "\x01ACTION "), "\x01")
	}
	out := []item.Item{it}
	if bits, err := strconv.ParseInt(bitsTag, 10, 64); err == nil && bits > 0 {
		g := it
		g.Kind = item.KindGift
		g.ID = it.ID + "/bits"
		g.Count = bits
		g.Value = float64(bits) * c.bitValue
		out = append(out, g)
	}
	return out
}

// mapModeration records CLEARMSG (one message deleted: target-msg-id,
// login) and CLEARCHAT (a user banned or timed out: target-user-id,
// ban-duration, the login as the trailing parameter; without a target the
// whole chat was cleared) as an item.MetricModeration sample. The deleted
// message's id is the chat item's id, so reports can leave it out and the
// alert engine can take it (or a banned user's messages) back out of its
// windows.
func (c *twitchCollector) mapModeration(m twitchMsg, line string) []item.Item {
	if len(m.Param(0)) < 2 || m.Param(0)[0] != '#' {
		c.env.Metrics.Errors.WithLabelValues(c.id, "parse").Inc()
		return nil
	}
	it, _ := c.base(m, line)
	it.Kind, it.Metric, it.Value = item.KindMetric, item.MetricModeration, 1
	it.AuthorID, it.Author = "", ""
	labels := make(map[string]string, len(c.labels)+4)
	maps.Copy(labels, c.labels)
	ts := strconv.FormatInt(it.TS.UnixMilli(), 10)
	if m.Command == "CLEARMSG" {
		target := m.Tag("target-msg-id")
		labels["action"] = "delete"
		labels["target_msg_id"] = target
		labels["target_user"] = m.Tag("login")
		it.ID = "clearmsg/" + target
		if target == "" {
			it.ID = "clearmsg/" + it.Room + "/" + ts
		}
	} else {
		userID, login := m.Tag("target-user-id"), ""
		if len(m.Params) > 1 {
			login = m.Trailing()
		}
		switch dur := m.Tag("ban-duration"); {
		case userID == "" && login == "":
			labels["action"] = "clear"
		case dur != "":
			labels["action"] = "timeout"
			labels["duration_s"] = dur
		default:
			labels["action"] = "ban"
		}
		if userID != "" {
			labels["target_user_id"] = userID
		}
		if login != "" {
			labels["target_user"] = login
		}
		it.ID = "clearchat/" + it.Room + "/" + userID + "/" + ts
	}
	it.Labels = labels
	return []item.Item{it}
}

// Subscription list prices in US dollars by msg-param-sub-plan (Twitch's
// US prices: Prime and Tier 1 $4.99, Tier 2 $9.99, Tier 3 $24.99), turned
// into CNY for item.Value with usd_cny like every other gift's value.
var twitchSubUSD = map[string]float64{"Prime": 4.99, "1000": 4.99, "2000": 9.99, "3000": 24.99}

// twitchSubValue is what count subscriptions of plan are worth in CNY; a
// notice without a plan is valued as Tier 1.
func (c *twitchCollector) twitchSubValue(plan string, count int64) float64 {
	usd, ok := twitchSubUSD[plan]
	if !ok {
		usd = twitchSubUSD["1000"]
	}
	return float64(count) * usd * c.usdCNY
}

func (c *twitchCollector) mapUsernotice(m twitchMsg, line string) []item.Item {
	it, _ := c.base(m, line)
	msgID := m.Tag("msg-id")
	it.Text = strings.TrimSpace(m.Tag("system-msg") + " " + m.Param(1))
	switch msgID {
	case "sub", "resub", "subgift", "submysterygift", "giftpaidupgrade", "primepaidupgrade",
		"anongiftpaidupgrade", "communitypayforward", "standardpayforward":
		it.Kind = item.KindGift
		it.Count = 1
		if n, err := strconv.ParseInt(m.Tag("msg-param-mass-gift-count"), 10, 64); err == nil && n > 0 {
			it.Count = n
		}
		switch msgID {
		case "submysterygift", "communitypayforward", "standardpayforward":
			// The gifts themselves follow as one subgift notice per
			// recipient, each valued there.
		default:
			it.Value = c.twitchSubValue(m.Tag("msg-param-sub-plan"), it.Count)
		}
		it.Labels = twitchRecipient(it.Labels, m)
		return []item.Item{it}
	case "raid":
		it.Kind = item.KindEnter
		if n, err := strconv.ParseInt(m.Tag("msg-param-viewerCount"), 10, 64); err == nil {
			it.Count = n
		}
		if dn := m.Tag("msg-param-displayName"); dn != "" {
			it.Author = dn
		}
		return []item.Item{it}
	case "announcement":
		it.Kind = item.KindChat
		it.Text = m.Param(1)
		return []item.Item{it}
	}
	c.env.Metrics.Unknown.WithLabelValues(c.id, "usernotice:"+stream.Trunc(msgID, 32)).Inc()
	return nil
}

// twitchRecipient adds the recipient of a gifted subscription, whom the
// notice's text names, to labels as recipient_user (display name, else
// login) and recipient_user_id, so that privacy mode finds and hashes the
// name there too (internal/redact.IsUserLabel). labels is copied, not
// written.
func twitchRecipient(labels map[string]string, m twitchMsg) map[string]string {
	name := twitchUnescapeTag(m.Tag("msg-param-recipient-display-name"))
	if name == "" {
		name = m.Tag("msg-param-recipient-user-name")
	}
	id := m.Tag("msg-param-recipient-id")
	if name == "" && id == "" {
		return labels
	}
	out := make(map[string]string, len(labels)+2)
	maps.Copy(out, labels)
	if name != "" {
		out["recipient_user"] = name
	}
	if id != "" {
		out["recipient_user_id"] = id
	}
	return out
}

// twitchMsg is one parsed IRC line. Tags stay raw and are looked up and
// unescaped on demand: a chat line carries ~15 tags and the collector
// reads five, so not building a map saves most of the parse cost.
type twitchMsg struct {
	RawTags string // without the leading '@'
	Prefix  string // without the leading ':'
	Command string
	Params  []string // the trailing parameter, if any, is last
}

// twitchParseLine parses one IRC line (RFC 1459 with IRCv3 tags); the line
// has no CRLF.
func twitchParseLine(line string) (twitchMsg, error) {
	var m twitchMsg
	s := line
	if strings.HasPrefix(s, "@") {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			return m, errors.New("tags without a command")
		}
		m.RawTags, s = s[1:i], s[i+1:]
	}
	s = strings.TrimLeft(s, " ")
	if strings.HasPrefix(s, ":") {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			return m, errors.New("prefix without a command")
		}
		m.Prefix, s = s[1:i], s[i+1:]
	}
	s = strings.TrimLeft(s, " ")
	i := strings.IndexByte(s, ' ')
	if i < 0 {
		m.Command, s = s, ""
	} else {
		m.Command, s = s[:i], s[i+1:]
	}
	if m.Command == "" {
		return m, errors.New("missing command")
	}
	for _, r := range m.Command {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return m, fmt.Errorf("bad command %q", stream.Trunc(m.Command, 32))
		}
	}
	for s != "" {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			break
		}
		if s[0] == ':' {
			m.Params = append(m.Params, s[1:])
			break
		}
		if i := strings.IndexByte(s, ' '); i >= 0 {
			m.Params = append(m.Params, s[:i])
			s = s[i+1:]
		} else {
			m.Params = append(m.Params, s)
			s = ""
		}
	}
	return m, nil
}

// Param returns the i-th parameter or "".
func (m twitchMsg) Param(i int) string {
	if i < len(m.Params) {
		return m.Params[i]
	}
	return ""
}

// Trailing returns the last parameter (the text of a PRIVMSG).
func (m twitchMsg) Trailing() string {
	if len(m.Params) == 0 {
		return ""
	}
	return m.Params[len(m.Params)-1]
}

// Nick is the nick part of the prefix (nick!user@host).
func (m twitchMsg) Nick() string {
	if i := strings.IndexAny(m.Prefix, "!@"); i >= 0 {
		return m.Prefix[:i]
	}
	return m.Prefix
}

// tags stores in vals[i] the raw (still escaped) value of tag keys[i], in
// one pass over the tags; like Tag, the first occurrence wins. At most 64
// keys.
func (m twitchMsg) tags(keys, vals []string) {
	var found uint64
	s := m.RawTags
	for s != "" {
		var kv string
		if i := strings.IndexByte(s, ';'); i >= 0 {
			kv, s = s[:i], s[i+1:]
		} else {
			kv, s = s, ""
		}
		for i, k := range keys {
			if found&(1<<i) == 0 && len(kv) >= len(k) && kv[:len(k)] == k && (len(kv) == len(k) || kv[len(k)] == '=') {
				found |= 1 << i
				if len(kv) > len(k) {
					vals[i] = kv[len(k)+1:]
				}
				break
			}
		}
	}
}

// Tag returns the unescaped value of tag key, "" when absent.
func (m twitchMsg) Tag(key string) string {
	s := m.RawTags
	for s != "" {
		var kv string
		if i := strings.IndexByte(s, ';'); i >= 0 {
			kv, s = s[:i], s[i+1:]
		} else {
			kv, s = s, ""
		}
		k, v, _ := strings.Cut(kv, "=")
		if k == key {
			return twitchUnescapeTag(v)
		}
	}
	return ""
}

// twitchUnescapeTag undoes IRCv3 tag escaping: \s space, \: semicolon,
// \\ backslash, \r, \n; an unknown escape drops the backslash and a
// trailing lone backslash is dropped (IRCv3 message-tags spec).
func twitchUnescapeTag(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if ch != '\\' {
			b.WriteByte(ch)
			continue
		}
		i++
		if i >= len(v) {
			break
		}
		switch v[i] {
		case 's':
			b.WriteByte(' ')
		case ':':
			b.WriteByte(';')
		case '\\':
			b.WriteByte('\\')
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		default:
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

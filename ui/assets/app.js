// lookout dashboard: live room view over Server-Sent Events, overview
// refresh, and small SVG charts. No dependencies; works offline.
"use strict";
(function () {
  const SVGNS = "http://www.w3.org/2000/svg";
  const page = document.body.dataset.page;

  function el(tag, attrs, text) {
    const e = tag.startsWith("svg:") ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmt(n) { return Math.round(n).toLocaleString(); }
  // clock shows a time as the server-rendered pages do: local, 24-hour.
  function clock(d) { return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }); }

  if (page === "overview") {
    const box = document.getElementById("overview");
    setInterval(async () => {
      try {
        const r = await fetch(box.dataset.refresh, { cache: "no-store" });
        if (r.ok) box.innerHTML = await r.text();
      } catch (e) { /* offline for a moment: keep what is shown */ }
    }, 3000);
  }

  if (page === "room") room(document.getElementById("room"));

  function room(root) {
    const source = root.dataset.source, roomID = root.dataset.room;
    const words = JSON.parse(root.dataset.words);
    const conn = document.getElementById("conn");
    const feed = document.getElementById("feed");
    const q = "source=" + encodeURIComponent(source) + "&room=" + encodeURIComponent(roomID);
    let step = 10, slices = new Map(), alerts = [], lastID = 0, seen = 0, now = Date.now() / 1000, es = null;
    const SPAN = 15 * 60;

    function addSlice(s) {
      const o = slices.get(s.t);
      if (!o) { slices.set(s.t, Object.assign({}, s)); return; }
      for (const k of ["messages", "positive", "neutral", "negative", "likes", "gifts", "gift_value"]) o[k] += s[k];
      if (s.viewers >= 0) o.viewers = s.viewers;
    }
    function setViewers(v, t) {
      const b = Math.floor(t / step) * step;
      const o = slices.get(b) || { t: b, messages: 0, positive: 0, neutral: 0, negative: 0, likes: 0, gifts: 0, gift_value: 0, viewers: -1 };
      o.viewers = v; slices.set(b, o);
    }
    function addMessages(ms) {
      for (const m of ms) {
        if (m.id <= seen) continue;
        seen = m.id;
        const li = el("li", { class: "s-" + (m.sentiment || "none") + " k-" + m.kind, "data-id": m.id, title: words[m.sentiment] || m.kind });
        li.appendChild(el("time", { datetime: m.ts }, clock(new Date(m.ts))));
        li.appendChild(el("b", {}, (m.author || "") + " "));
        const span = el("span");
        highlight(span, m.kind === "gift" && !m.text ? "🎁 ¥" + (m.value || 0).toFixed(2) : m.text, m.keywords || []);
        li.appendChild(span);
        feed.appendChild(li);
      }
      while (feed.children.length > 150) feed.removeChild(feed.firstChild);
      feed.scrollTop = feed.scrollHeight;
    }
    function highlight(into, text, kws) {
      if (!kws.length) { into.textContent = text; return; }
      let rest = text;
      while (rest) {
        let best = -1, kw = "";
        for (const k of kws) { const i = rest.indexOf(k); if (i >= 0 && (best < 0 || i < best)) { best = i; kw = k; } }
        if (best < 0) { into.appendChild(document.createTextNode(rest)); break; }
        into.appendChild(document.createTextNode(rest.slice(0, best)));
        into.appendChild(el("mark", {}, kw));
        rest = rest.slice(best + kw.length);
      }
    }
    function terms(ts) {
      const box = document.getElementById("terms");
      box.replaceChildren(...ts.map(t => el("span", t.negative * 2 > t.mentions ? { class: "hot" } : {}, t.term + " " + t.mentions)));
    }
    function alertList() {
      const ul = document.getElementById("alerts");
      ul.replaceChildren(...alerts.slice().reverse().map(a => {
        const li = el("li", { "data-alert": a.id });
        li.appendChild(el("span", { class: "dot " + a.severity }));
        li.appendChild(document.createTextNode(" " + a.rule + " · " + a.state + " · " + clock(new Date(a.start * 1000)) + " — " + a.summary));
        return li;
      }));
    }
    function draw() {
      const t1 = Math.floor(now / step) * step + step;
      for (const k of slices.keys()) if (k < t1 - SPAN - step) slices.delete(k);
      // The last 15 minutes, or less while the room has less to show.
      let first = t1 - 60;
      for (const k of slices.keys()) first = Math.min(first, k);
      const t0 = Math.max(t1 - SPAN, first), span = t1 - t0;
      const list = [...slices.values()].filter(s => s.t >= t0).sort((a, b) => a.t - b.t);
      const W = 600, H = 180, x = t => (t - t0) / span * W, bw = Math.max(W / (span / step) - 1, 1);
      // Message rate, stacked by sentiment, with alert markers behind.
      const rate = document.getElementById("chart-rate");
      let max = 1;
      for (const s of list) max = Math.max(max, s.positive + s.neutral + s.negative, s.messages);
      const kids = [];
      for (const a of alerts) {
        const s = Math.max(a.start, t0), e = a.end || now;
        if (e < t0) continue;
        kids.push(el("svg:rect", { class: "mark " + a.severity, x: x(s), y: 0, width: Math.max(x(e) - x(s), 2), height: H }));
      }
      for (const s of list) {
        let y = H;
        for (const [cls, n] of [["neg", s.negative], ["neu", s.neutral + Math.max(0, s.messages - s.positive - s.neutral - s.negative)], ["pos", s.positive]]) {
          const h = n / max * (H - 14);
          if (h <= 0) continue;
          y -= h;
          kids.push(el("svg:rect", { class: cls, x: x(s.t), y: y, width: bw, height: h }));
        }
      }
      kids.push(el("svg:text", { x: 4, y: 12 }, fmt(max * 60 / step) + "/min"));
      rate.replaceChildren(...kids);
      rate.dataset.bars = list.filter(s => s.messages > 0).length;
      // Viewers line.
      const vs = list.filter(s => s.viewers >= 0);
      const vchart = document.getElementById("chart-viewers");
      let vmax = 1;
      for (const s of vs) vmax = Math.max(vmax, s.viewers);
      const vk = [];
      for (const a of alerts) {
        const s = Math.max(a.start, t0), e = a.end || now;
        if (e < t0) continue;
        vk.push(el("svg:rect", { class: "mark " + a.severity, x: x(s), y: 0, width: Math.max(x(e) - x(s), 2), height: H }));
      }
      if (vs.length) vk.push(el("svg:polyline", { class: "line", points: vs.map(s => x(s.t + step / 2) + "," + (H - s.viewers / vmax * (H - 14))).join(" ") }));
      vk.push(el("svg:text", { x: 4, y: 12 }, fmt(vmax)));
      vchart.replaceChildren(...vk);
      vchart.dataset.points = vs.length;
      // KPIs: the last minute's rate and negative share, the latest viewers.
      const lastMin = list.filter(s => s.t >= t1 - 60 - step);
      let msgs = 0, neg = 0, scored = 0, inter = 0, gift = 0;
      for (const s of lastMin) { msgs += s.messages; neg += s.negative; scored += s.positive + s.neutral + s.negative; }
      for (const s of list) { inter += s.messages + s.likes + s.gifts; gift += s.gift_value; }
      const viewers = vs.length ? vs[vs.length - 1].viewers : -1;
      document.getElementById("k-viewers").textContent = viewers >= 0 ? fmt(viewers) : "—";
      document.getElementById("k-rate").textContent = fmt(msgs * 60 / Math.max(60, Math.min(60 + step, now - t0)));
      document.getElementById("k-neg").textContent = scored ? (100 * neg / scored).toFixed(1) + "%" : "—";
      document.getElementById("k-inter").textContent = viewers > 0 ? (inter / viewers).toFixed(2) : "—";
      document.getElementById("k-gift").textContent = "¥" + gift.toFixed(2);
    }
    let pending = false;
    function schedule() { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); } }

    async function start() {
      if (es) es.close();
      const r = await fetch("/api/room?" + q, { cache: "no-store" });
      if (!r.ok) { conn.textContent = r.status; setTimeout(start, 3000); return; }
      const h = await r.json();
      step = h.step; now = h.now; slices = new Map(); alerts = h.alerts; lastID = h.last_id;
      for (const s of h.slices) addSlice(s);
      addMessages(h.messages); terms(h.terms); alertList(); schedule();
      es = new EventSource("/api/room/stream?" + q + "&after=" + lastID);
      es.addEventListener("open", () => { conn.textContent = root.dataset.live; conn.className = "badge on"; });
      es.addEventListener("error", () => {
        conn.textContent = root.dataset.reconnecting; conn.className = "badge";
        if (es.readyState === EventSource.CLOSED) setTimeout(start, 2000);
      });
      es.addEventListener("update", ev => {
        const u = JSON.parse(ev.data);
        now = u.now; lastID = u.last_id;
        for (const s of u.slices) addSlice(s);
        if (u.viewers >= 0) setViewers(u.viewers, u.now);
        addMessages(u.messages);
        if (u.alerts) { alerts = u.alerts; alertList(); }
        if (u.terms) terms(u.terms);
        root.dataset.updates = (+root.dataset.updates || 0) + 1;
        schedule();
      });
    }
    setInterval(() => { now += 1; schedule(); }, 1000);
    start();
  }
})();

#!/usr/bin/env node
// Side-by-side: lookout's classifier vs the npm packages vader-sentiment and
// sentiment (AFINN-165) on the same labelled lines, in one run.
//
//   cd bench && npm install && node compare.js   (LOOKOUT_DATA: the data folder)
//
// Accuracy is binary and counts a neutral answer as wrong (VADER: compound
// within ±0.05 is neutral, its authors' convention; AFINN: score 0 is
// neutral). Throughput is single-threaded scoring of the same lines, looped
// for at least one second; lookout runs as `go run ./bench/lookoutscore`
// (GOMAXPROCS=1).
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const vader = require('vader-sentiment');
const Sentiment = require('sentiment');
const afinn = new Sentiment();

// Resolved here: lookoutscore runs from the repository root, so a relative
// LOOKOUT_DATA must not be read relative to a different directory there.
const data = process.env.LOOKOUT_DATA && path.resolve(process.env.LOOKOUT_DATA);
if (!data) {
  console.error('compare.js: set LOOKOUT_DATA to the shared data directory');
  process.exit(2);
}
const files = (process.argv.slice(2).length ? process.argv.slice(2) : [
  'en_tweets_groundtruth.tsv', 'en_airline_tweets_dev.csv',
  'weibo_senti_2400_dev.csv', 'ChnSentiCorp_htl_all_dev.csv',
]).map((f) => path.join(data, 'sentiment', f));

// RFC 4180 CSV with quoted fields that may hold commas, quotes and newlines.
function parseCSV(text) {
  const rows = [];
  let row = [], field = '', q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"') {
        if (text[i + 1] === '"') { field += '"'; i++; } else q = false;
      } else field += c;
    } else if (c === '"') q = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\n') { row.push(field); rows.push(row); row = []; field = ''; }
    else if (c !== '\r') field += c;
  }
  if (field !== '' || row.length) { row.push(field); rows.push(row); }
  return rows;
}

// Same rules as sentiment.ReadEvalFile.
function readLabelled(file) {
  const text = fs.readFileSync(file, 'utf8');
  const out = [];
  if (file.endsWith('.tsv')) {
    for (const line of text.split('\n').slice(1)) {
      const p = line.split('\t');
      if (p.length < 3) continue;
      const v = parseFloat(p[1]);
      if (!isFinite(v) || v === 0) continue;
      out.push({ text: p.slice(2).join('\t'), pos: v > 0 });
    }
    return out;
  }
  const rows = parseCSV(text);
  const hdr = rows[0].map((h) => h.replace(/^\uFEFF/, '').trim());
  const li = hdr.indexOf('label'), ri = hdr.indexOf('review');
  for (const r of rows.slice(1)) {
    const l = (r[li] || '').trim();
    if (l === '1' || l === '0') out.push({ text: r[ri] || '', pos: l === '1' });
  }
  return out;
}

function evaluate(exs, score) {
  let correct = 0, neutral = 0;
  for (const e of exs) {
    const s = score(e.text);
    if (s === 0) neutral++;
    else if ((s > 0) === e.pos) correct++;
  }
  return { accuracy: correct / exs.length, neutral_rate: neutral / exs.length };
}

function throughput(exs, score, minMs = 1000) {
  let n = 0;
  const t0 = process.hrtime.bigint();
  let el = 0;
  while (el < minMs) {
    for (const e of exs) score(e.text);
    n += exs.length;
    el = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  return n / (el / 1000);
}

const scorers = {
  'vader-sentiment': (t) => {
    const c = vader.SentimentIntensityAnalyzer.polarity_scores(t).compound;
    return c >= 0.05 ? 1 : c <= -0.05 ? -1 : 0;
  },
  'sentiment (AFINN)': (t) => Math.sign(afinn.analyze(t).score),
};

const repo = path.resolve(__dirname, '..');
const goOut = execFileSync('go', ['run', './bench/lookoutscore', ...(process.env.LOOKOUT_THRESHOLD ? ['-threshold', process.env.LOOKOUT_THRESHOLD] : []), ...files],
  { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const lookout = {};
for (const l of goOut.trim().split('\n')) { const r = JSON.parse(l); lookout[r.file] = r; }

console.log('| file | n | tool | accuracy | neutral | msgs/s | lookout speed-up |');
console.log('|---|---:|---|---:|---:|---:|---:|');
for (const file of files) {
  const exs = readLabelled(file);
  const base = path.basename(file);
  const lo = lookout[base];
  console.log(`| ${base} | ${exs.length} | lookout | ${(lo.accuracy * 100).toFixed(2)}% | ${(lo.neutral_rate * 100).toFixed(2)}% | ${Math.round(lo.msgs_per_s)} | 1.0× |`);
  for (const [name, fn] of Object.entries(scorers)) {
    const r = evaluate(exs, fn);
    const tp = throughput(exs, fn);
    console.log(`| ${base} | ${exs.length} | ${name} | ${(r.accuracy * 100).toFixed(2)}% | ${(r.neutral_rate * 100).toFixed(2)}% | ${Math.round(tp)} | ${(lo.msgs_per_s / tp).toFixed(1)}× |`);
  }
}

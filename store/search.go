package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SearchText is what items_fts indexes for text: the text with every
// character of a script written without spaces between words (Han,
// Hiragana, Katakana) set apart by spaces, so that SQLite's unicode61
// tokenizer makes each of them a token and a run of them is found as a
// phrase. Everything else stays as it is and is tokenized by word.
// It is registered as the SQL function lookout_search_text.
func SearchText(text string) string {
	if !storeHasCJK(text) {
		return text
	}
	var b strings.Builder
	b.Grow(len(text) + len(text)/2)
	for _, r := range text {
		if storeIsCJK(r) {
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func storeIsCJK(r rune) bool {
	return r >= 0x3040 && (unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r))
}

func storeHasCJK(s string) bool {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if storeIsCJK(r) {
			return true
		}
		i += n
	}
	return false
}

// SearchMatch turns what a user typed into an FTS4 MATCH expression. Each
// blank-separated word must occur (AND); a word is matched as a phrase of
// its tokens, so 退款 finds the two characters next to each other and
// "refund" also finds "refunds" (a word made of letters or digits is a
// prefix). Quotes and FTS operators in the input are plain text. It fails
// when the input holds nothing to search for (only punctuation).
func SearchMatch(query string) (string, error) {
	var parts []string
	for _, w := range strings.Fields(query) {
		toks := storeSearchTokens(w)
		if len(toks) == 0 {
			continue
		}
		last := toks[len(toks)-1]
		if r, _ := utf8.DecodeLastRuneInString(last); !storeIsCJK(r) {
			toks[len(toks)-1] = last + "*"
		}
		parts = append(parts, `"`+strings.Join(toks, " ")+`"`)
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("search: %q has no letters, digits or characters to search for", query)
	}
	return strings.Join(parts, " "), nil
}

// storeSearchTokens splits a word as unicode61 does for SearchText:
// runs of letters, digits and marks, each CJK character on its own.
func storeSearchTokens(w string) []string {
	var toks []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for _, r := range w {
		switch {
		case storeIsCJK(r):
			flush()
			toks = append(toks, string(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			cur.WriteRune(r)
		default:
			flush()
		}
	}
	flush()
	return toks
}

// storeSearchTriggers fill items_fts from items (migration 0007_search has the
// table and the delete trigger).
var storeSearchTriggers = []string{`CREATE TRIGGER IF NOT EXISTS items_fts_insert AFTER INSERT ON items
WHEN new.text IS NOT NULL AND new.text <> '' BEGIN
    INSERT INTO items_fts (docid, body) VALUES (new.id, lookout_search_text(new.text));
END`, `CREATE TRIGGER IF NOT EXISTS items_fts_update AFTER UPDATE OF text ON items BEGIN
    DELETE FROM items_fts WHERE docid = old.id;
    INSERT INTO items_fts (docid, body)
    SELECT new.id, lookout_search_text(new.text) WHERE new.text IS NOT NULL AND new.text <> '';
END`}

// storeSetSearch turns the search index on (its triggers exist, and every
// item written while they did not is indexed, in one transaction) or off
// (the triggers are dropped; the index keeps what it has). It returns how
// many items it indexed.
func storeSetSearch(ctx context.Context, db *sql.DB, on bool) (int64, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name = 'items_fts_insert'`).Scan(&have); err != nil {
		return 0, err
	}
	var n int64
	switch {
	case on && have == 0:
		res, err := tx.ExecContext(ctx, `INSERT INTO items_fts (docid, body)
			SELECT id, lookout_search_text(text) FROM items i
			WHERE text IS NOT NULL AND text <> '' AND NOT EXISTS (SELECT 1 FROM items_fts f WHERE f.docid = i.id)`)
		if err != nil {
			return 0, fmt.Errorf("index the items written without it: %w", err)
		}
		n, _ = res.RowsAffected()
		for _, q := range storeSearchTriggers {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return 0, err
			}
		}
	case !on && have > 0:
		for _, q := range []string{`DROP TRIGGER IF EXISTS items_fts_insert`, `DROP TRIGGER IF EXISTS items_fts_update`} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return 0, err
			}
		}
	default:
		return 0, nil
	}
	return n, tx.Commit()
}

// SearchOptions narrow a search. Zero values do not filter.
type SearchOptions struct {
	Text      string    // what to look for (see SearchMatch)
	Source    string    // source id
	Room      string    // room, channel, feed or topic
	Platform  string    // bilibili, douyin, …
	Sentiment string    // positive, neutral or negative (or pos, neu, neg)
	Since     time.Time // items said at or after this time
	Limit     int       // most rows, newest first (default 50)
	// Timeout interrupts the search (as QueryOptions.Timeout).
	Timeout time.Duration
}

// SearchColumns are the columns Search hands its sink.
var SearchColumns = []string{"ts", "source", "room", "kind", "author", "sentiment", "text"}

// Search finds items whose text matches opts.Text in the database at
// dbPath, opened read-only (it never creates or changes a file), newest
// first, and hands them to sink with SearchColumns.
func Search(ctx context.Context, dbPath string, opts SearchOptions, sink RowSink) (err error) {
	match, err := SearchMatch(opts.Text)
	if err != nil {
		return err
	}
	switch opts.Sentiment {
	case "", "positive", "neutral", "negative":
	case "pos", "neu", "neg":
		opts.Sentiment = map[string]string{"pos": "positive", "neu": "neutral", "neg": "negative"}[opts.Sentiment]
	default:
		return fmt.Errorf("search: sentiment must be positive, neutral or negative (or pos, neu, neg), not %q", opts.Sentiment)
	}
	if opts.Limit <= 0 {
		opts.Limit = 50
	}
	q := `SELECT i.ts, i.source, i.room, i.kind, i.author, i.sentiment, i.text
FROM items_fts f JOIN items i ON i.id = f.docid
WHERE items_fts MATCH ?`
	args := []any{match}
	for _, f := range []struct{ col, v string }{{"source", opts.Source}, {"room", opts.Room}, {"platform", opts.Platform}, {"sentiment", opts.Sentiment}} {
		if f.v != "" {
			q += " AND i." + f.col + " = ?"
			args = append(args, f.v)
		}
	}
	if !opts.Since.IsZero() {
		q += " AND i.ts >= ?"
		args = append(args, FormatTime(opts.Since))
	}
	q += " ORDER BY i.ts DESC, i.id DESC LIMIT ?"
	args = append(args, opts.Limit)

	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultQueryTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
		defer func() {
			if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				err = fmt.Errorf("search: stopped after %s (the time limit; raise it with --timeout): %w", timeout, context.DeadlineExceeded)
			}
		}()
	}
	s, err := OpenReadOnly(ctx, dbPath)
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	defer s.Close()
	var on int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name = 'items_fts_insert'`).Scan(&on); err != nil {
		return fmt.Errorf("search: %w", err)
	}
	if on == 0 {
		return fmt.Errorf("search: the database has no search index: it is off in the config (store.search: false), or the database was last opened by a lookout without one; run the daemon once with store.search on to build it")
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("search: %w", storeOlderSchema(ctx, s, err))
	}
	defer rows.Close()
	if err := sink.Columns(SearchColumns); err != nil {
		return fmt.Errorf("search: write output: %w", err)
	}
	vals := make([]any, len(SearchColumns))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("search: %w", err)
		}
		if err := sink.Row(vals); err != nil {
			return fmt.Errorf("search: write output: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("search: %w", err)
	}
	return nil
}

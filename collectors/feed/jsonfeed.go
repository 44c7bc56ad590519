package feed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// JSON Feed (https://jsonfeed.org, versions 1.0 and 1.1): an object with a
// version URL and an items array. Only the fields lookout stores are read.
type jsonFeedDoc struct {
	Version     json.RawMessage   `json:"version"`
	Title       json.RawMessage   `json:"title"`
	HomePageURL json.RawMessage   `json:"home_page_url"`
	Author      json.RawMessage   `json:"author"`  // 1.0
	Authors     json.RawMessage   `json:"authors"` // 1.1
	Items       []json.RawMessage `json:"items"`
}

type jsonFeedItem struct {
	ID            json.RawMessage `json:"id"`
	URL           json.RawMessage `json:"url"`
	ExternalURL   json.RawMessage `json:"external_url"`
	Title         json.RawMessage `json:"title"`
	ContentHTML   json.RawMessage `json:"content_html"`
	ContentText   json.RawMessage `json:"content_text"`
	Summary       json.RawMessage `json:"summary"`
	DatePublished json.RawMessage `json:"date_published"`
	DateModified  json.RawMessage `json:"date_modified"`
	Author        json.RawMessage `json:"author"`
	Authors       json.RawMessage `json:"authors"`
}

// errNotJSONFeed says a JSON document is not a JSON Feed.
var errNotJSONFeed = fmt.Errorf("%w: a JSON document, not a JSON Feed (no version or items)", ErrNotAFeed)

// parseJSONFeed reads a JSON Feed. Fields of the wrong type read as empty;
// an item that is not an object is skipped with a warning; ids sent as
// numbers become their shortest decimal form (9006.0 is "9006").
func parseJSONFeed(data []byte, base *url.URL) (*Feed, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		data = bytes.ToValidUTF8(data, []byte("\uFFFD"))
	}
	var doc jsonFeedDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			if ute.Field == "items" {
				return nil, fmt.Errorf("JSON Feed: items is not an array (%s)", ute.Value)
			}
			return nil, errNotJSONFeed
		}
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	version := jsonFeedString(doc.Version)
	if !strings.Contains(version, "jsonfeed.org/version/") && doc.Items == nil {
		return nil, errNotJSONFeed
	}
	f := &Feed{Format: "json", Title: jsonFeedString(doc.Title)}
	f.Link = feedResolve(base, jsonFeedString(doc.HomePageURL))
	feedAuthor := jsonFeedAuthor(doc.Authors, doc.Author)
	seen := make(map[string]string, len(doc.Items))
	p := feedInterp{base: base}
	bad := 0
	for _, raw := range doc.Items {
		var it jsonFeedItem
		if err := json.Unmarshal(raw, &it); err != nil {
			bad++
			continue
		}
		var e FeedEntry
		e.Title = feedStripHTML(jsonFeedString(it.Title))
		link := jsonFeedString(it.URL)
		if link == "" {
			link = jsonFeedString(it.ExternalURL)
		}
		e.URL = feedResolve(base, link)
		switch {
		case jsonFeedString(it.Summary) != "":
			e.Summary = feedStripHTML(jsonFeedString(it.Summary))
		case jsonFeedString(it.ContentHTML) != "":
			e.Summary = feedStripHTML(jsonFeedString(it.ContentHTML))
		default:
			e.Summary = feedCollapse(jsonFeedString(it.ContentText))
		}
		e.Summary = feedTruncate(e.Summary)
		e.Author = jsonFeedAuthor(it.Authors, it.Author)
		if e.Author == "" {
			e.Author = feedAuthor
		}
		rawDate := jsonFeedString(it.DatePublished)
		if rawDate == "" {
			rawDate = jsonFeedString(it.DateModified)
		}
		e.Published, e.Zoneless, _ = feedParseDate(rawDate)
		e.ID = feedEntryID(jsonFeedID(it.ID), &e, rawDate)
		p.add(f, seen, e)
	}
	if bad > 0 {
		f.Warnings = append(f.Warnings, fmt.Sprintf("skipped %d JSON Feed item(s) that are not objects", bad))
	}
	return f, nil
}

// jsonFeedString is a JSON string's value; any other JSON value is "".
func jsonFeedString(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return strings.TrimSpace(s)
}

// jsonFeedID reads an id: a string as written, a number in its shortest
// decimal form so that 9006, 9006.0 and 9.006e3 are one key.
func jsonFeedID(raw json.RawMessage) string {
	if s := jsonFeedString(raw); s != "" {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return ""
	}
	if !strings.ContainsAny(n.String(), ".eE") {
		return n.String() // an integer, however long, as written
	}
	if v, err := n.Float64(); err == nil && !math.IsInf(v, 0) && !math.IsNaN(v) {
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return n.String()
}

// jsonFeedAuthor is the first author's name: the 1.1 authors array, else
// the 1.0 author object.
func jsonFeedAuthor(authors, author json.RawMessage) string {
	type person struct {
		Name json.RawMessage `json:"name"`
	}
	var list []person
	if json.Unmarshal(authors, &list) == nil {
		for _, a := range list {
			if n := jsonFeedString(a.Name); n != "" {
				return n
			}
		}
	}
	var one person
	if json.Unmarshal(author, &one) == nil {
		return jsonFeedString(one.Name)
	}
	return ""
}

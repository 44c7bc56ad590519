-- 0007_search: full-text search over items.text (`lookout search`).
--
-- items_fts is an FTS4 table whose docid is items.id. Its body is the
-- item's text with every Chinese or Japanese character set apart by
-- spaces (lookout_search_text, a function lookout registers on its own
-- connections), so the unicode61 tokenizer indexes each such character
-- as a word and finds any run of them as a phrase: 退款 matches
-- 收到假货要求退款, and so does a one-character query. Other scripts are
-- indexed by word, case and accents folded. Query it through
-- `lookout search`, or by hand:
--   SELECT i.ts, i.text FROM items_fts f JOIN items i ON i.id = f.docid
--   WHERE items_fts MATCH '"退 款"' ORDER BY i.ts DESC LIMIT 20;
--
-- The triggers items_fts_insert and items_fts_update, which fill it, are
-- created when lookout opens the database with `store.search` on (the
-- default), together with the rows of items written while it was off,
-- and dropped when it is off. They call lookout_search_text, so rows
-- added to items by another program (sqlite3) fail with "no such
-- function" while they exist. Deletes work everywhere.
CREATE VIRTUAL TABLE items_fts USING fts4 (body, tokenize=unicode61);

CREATE TRIGGER items_fts_delete AFTER DELETE ON items
WHEN old.text IS NOT NULL AND old.text <> '' BEGIN
    DELETE FROM items_fts WHERE docid = old.id;
END;

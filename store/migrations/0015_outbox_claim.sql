-- 0015_outbox_claim: when a sender moved an outbox row to 'sending'.
-- Several processes may send from one file (lookout run --role process on
-- one machine); a sender claims a message's rows only while they are still
-- pending, and a row left in 'sending' longer than the claim timeout
-- belonged to a sender that died: it goes back to 'pending' and is sent
-- again with its batch id. Rows in 'sending' from before this step have no
-- claim time and count as stale.
ALTER TABLE outbox ADD COLUMN claimed_at TEXT;

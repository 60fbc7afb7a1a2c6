-- The mark a keyed command's append leaves on its Idempotency-Key, in the
-- transaction that commits its events: the stream it wrote and the versions
-- it moved that stream from and to. A record with a mark and no response is
-- a command that committed and died before its response was stored; a retry
-- answers from the mark instead of running the command again.
ALTER TABLE idempotency_keys
    ADD COLUMN stream_id    uuid,
    ADD COLUMN from_version bigint,
    ADD COLUMN to_version   bigint;

-- The log's hash chain (docs/audit.md): each event's hash is
-- SHA-256(previous event's hash || the event's canonical bytes), computed by
-- the one writer as it appends; the previous hash is the last event's. The
-- events written before this migration are chained by the code that applies
-- it (store/src/sqlite/migrate.rs), in the same transaction.
ALTER TABLE events ADD COLUMN hash BLOB;

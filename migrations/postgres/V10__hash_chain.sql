-- The log's hash chain (docs/audit.md): each event's hash is
-- SHA-256(previous event's hash || the event's canonical bytes), computed in
-- the statement that takes the event's position. The head row keeps the
-- newest event's hash beside its position, so an append reads its
-- predecessor's hash from the row it locks anyway, never from a scan.
--
-- NULL until chained: the server (and `ticketflow migrate`) chains the
-- events written before this migration, in position order, right after it,
-- and sets the head's hash last; appends made meanwhile chain from a NULL
-- head and stay NULL, so the chaining takes them up too.
ALTER TABLE events ADD COLUMN hash bytea;
ALTER TABLE event_log_head ADD COLUMN hash bytea;

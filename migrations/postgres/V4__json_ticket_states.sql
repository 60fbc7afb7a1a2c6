-- The ticket states the projections keep are written whole and read whole,
-- never searched inside: `json` (the text, checked) rather than `jsonb`
-- (parsed into a tree on every write, printed back on every read), which
-- was the largest single cost of PostgreSQL's share of applying events.
-- `->>` and friends still work on them.
ALTER TABLE rm_tickets ALTER COLUMN state TYPE json;
ALTER TABLE rm_notify_tickets ALTER COLUMN state TYPE json;
ALTER TABLE rm_channel_tickets ALTER COLUMN state TYPE json;

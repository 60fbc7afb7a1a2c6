-- Each ticket event rewrites the ticket's row in these three tables. With
-- pages filled to the brim the new row version lands on another page, and
-- every index of the table gets an entry for it; with room left on the page
-- PostgreSQL keeps it there (a HOT update) and leaves the indexes alone.
-- Only pages written from now on keep the room. A rebuild's copies take
-- these settings from the live tables.
ALTER TABLE rm_tickets SET (fillfactor = 70);
ALTER TABLE rm_notify_tickets SET (fillfactor = 70);
ALTER TABLE rm_channel_tickets SET (fillfactor = 70);

-- The projection worker publishes the channel messages a batch stored as the
-- projections rendered them, instead of reading them back by position: no
-- query looks these tables up by position any more, and every insert paid
-- for the index.
DROP INDEX rm_ticket_messages_position;
DROP INDEX rm_notifications_position;

-- As PostgreSQL's V6: nothing looks channel messages up by position any more.
DROP INDEX rm_ticket_messages_position;
DROP INDEX rm_notifications_position;

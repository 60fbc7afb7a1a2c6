-- WebSocket channel messages, stored so that a live message and its replay
-- are the same bytes with the same seq (see crates/projections/src/messages.rs).

-- Projection "ticket_channel": every ticket event's ticket-channel message
-- (`ticket_update` or `comment_added`), rendered once as JSON text, under the
-- event's project channel seq (contiguous 1, 2, 3, ... per project) and its
-- global position (what a projection worker publishes after a batch).
CREATE TABLE rm_ticket_messages (
    project_id uuid   NOT NULL,
    seq        bigint NOT NULL,
    position   bigint NOT NULL,
    message    text   NOT NULL,
    PRIMARY KEY (project_id, seq)
);
CREATE INDEX rm_ticket_messages_position ON rm_ticket_messages (position);

-- The ticket state the ticket channel renders messages from (its own copy:
-- projections advance independently). A deleted ticket's state is dropped.
CREATE TABLE rm_channel_tickets (
    ticket_id uuid  PRIMARY KEY,
    state     jsonb NOT NULL
);

-- Notification-channel messages are rendered from rm_notifications rows;
-- the worker reads them by the position of the events that produced them.
CREATE INDEX rm_notifications_position ON rm_notifications (position);

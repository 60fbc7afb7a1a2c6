-- `general` notifications (project announcements, operator notices) are about
-- no ticket, and an operator's notice about no project: the contract's
-- notification JSON then has `ticket_id`/`ticket_key` (and `project_id`) null.
-- A rebuild's copies (LIKE ... INCLUDING ALL) take the nullable columns.
ALTER TABLE rm_notifications
    ALTER COLUMN ticket_id DROP NOT NULL,
    ALTER COLUMN ticket_key DROP NOT NULL,
    ALTER COLUMN project_id DROP NOT NULL;

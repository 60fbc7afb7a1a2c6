-- A password change revokes every refresh family of its user; a process
-- loads the families revoked within an access token's lifetime at start and
-- polls for new ones. Without these both would scan their whole table.
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX revoked_token_families_revoked_at ON revoked_token_families (revoked_at);

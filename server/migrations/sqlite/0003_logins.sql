-- "Session" now means a circle's meeting. What a device gets by logging in
-- is a login: the table and the refresh tokens' reference to it say so.
ALTER TABLE sessions RENAME TO logins;
ALTER TABLE refresh_tokens RENAME COLUMN session_id TO login_id;
DROP INDEX sessions_by_device;
DROP INDEX sessions_by_expiry;
DROP INDEX refresh_tokens_by_session;
CREATE INDEX logins_by_device ON logins (device_id);
CREATE INDEX logins_by_expiry ON logins (expires_at);
CREATE INDEX refresh_tokens_by_login ON refresh_tokens (login_id);

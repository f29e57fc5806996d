-- "Session" now means a circle's meeting. What a device gets by logging in
-- is a login: the table and the refresh tokens' reference to it say so.
ALTER TABLE sessions RENAME TO logins;
ALTER TABLE refresh_tokens RENAME COLUMN session_id TO login_id;
ALTER INDEX sessions_by_device RENAME TO logins_by_device;
ALTER INDEX sessions_by_expiry RENAME TO logins_by_expiry;
ALTER INDEX refresh_tokens_by_session RENAME TO refresh_tokens_by_login;
ALTER TABLE logins RENAME CONSTRAINT sessions_pkey TO logins_pkey;
ALTER TABLE logins RENAME CONSTRAINT sessions_device_id_fkey TO logins_device_id_fkey;
ALTER TABLE refresh_tokens RENAME CONSTRAINT refresh_tokens_session_id_fkey TO refresh_tokens_login_id_fkey;

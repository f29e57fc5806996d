-- Who may open circles, when the operator decides (`accounts.facilitators =
-- "enrolled"`): a one-time code the operator mints (`hearth-server admin
-- facilitator-code`), stored only as its hash, and the accounts that
-- redeemed one. The server knows no names: an enrolment is an opaque
-- account id and a date.
CREATE TABLE facilitator_codes (
    code_hash  BLOB    PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX facilitator_codes_by_expiry ON facilitator_codes (expires_at);
CREATE TABLE facilitators (
    account_id  TEXT    PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    enrolled_at INTEGER NOT NULL
) STRICT;

-- Each circle's schedule snapshot: one opaque MLS application message that a
-- facilitator keeps current for members who join late. The server knows that
-- it exists, its size, its version and when it was written: nothing else.
CREATE TABLE snapshots (
    circle_id  BYTEA   PRIMARY KEY NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    version    BIGINT  NOT NULL,
    data       BYTEA   NOT NULL,
    updated_at BIGINT  NOT NULL
);

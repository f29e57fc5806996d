-- The database as a whole. `generation` names this copy of the log: a
-- backup made by `hearth-server admin backup` is marked `from_backup`, and a
-- server that starts on it (or `hearth-server admin restored`, after a
-- restore by other means) begins a new generation: a new name, and every
-- circle's numbers jump ahead by 2^32, so that no number a client has seen
-- before the restore is ever given to another message. Clients compare the
-- name they were last told and say that the server was restored.
CREATE TABLE instance (
    one         INTEGER PRIMARY KEY NOT NULL CHECK (one = 1),
    generation  TEXT    NOT NULL,
    from_backup INTEGER NOT NULL DEFAULT 0,
    restores    INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO instance (one, generation) VALUES (1, lower(hex(randomblob(16))));

-- The database as a whole. `generation` names this copy of the log: after a
-- restore (`hearth-server admin restored`, or a server starting on a backup
-- marked `from_backup`) a new generation begins: a new name, and every
-- circle's numbers jump ahead by 2^32, so that no number a client has seen
-- before the restore is ever given to another message. Clients compare the
-- name they were last told and say that the server was restored.
CREATE TABLE instance (
    one         INTEGER PRIMARY KEY CHECK (one = 1),
    generation  TEXT    NOT NULL,
    from_backup BIGINT  NOT NULL DEFAULT 0,
    restores    BIGINT  NOT NULL DEFAULT 0
);
INSERT INTO instance (one, generation) VALUES (1, replace(gen_random_uuid()::text, '-', ''));

-- Several instances on one database: each live task is held by one instance at a time, for as
-- long as its lease runs; a lapsed lease is anyone's to take (SELECT ... FOR UPDATE SKIP LOCKED).
ALTER TABLE tasks ADD COLUMN lease_owner TEXT;
ALTER TABLE tasks ADD COLUMN lease_until DOUBLE PRECISION;

-- The instances that said they are alive, and until when (`mjbot status` lists them).
CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   DOUBLE PRECISION NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL
);

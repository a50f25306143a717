-- Several instances on one database (the growth path): each live task is held by one instance
-- at a time, for as long as its lease runs; a lapsed lease is anyone's to take.
ALTER TABLE tasks ADD COLUMN lease_owner TEXT;
ALTER TABLE tasks ADD COLUMN lease_until REAL;

-- The instances that said they are alive, and until when (`mjbot status` lists them).
CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    expires_at   REAL NOT NULL
);

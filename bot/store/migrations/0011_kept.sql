-- Photos kept for a later answer: the face of a face-first /swap, the first frame of a /video
-- waiting for its end frame, the photos of a prompt the check held, a reference the provider
-- gave no URL, a picture the studio's ✏️/🖼 asked a prompt for. The answer may reach any
-- instance, so they live here, not in one instance's media folder. Each has an expiry
-- (renewed on use for a reference) and is pruned after it; the size is capped by the store.
CREATE TABLE kept (
    key        TEXT PRIMARY KEY,
    data       BLOB NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX kept_expires ON kept (expires_at);

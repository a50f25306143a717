-- Final callbacks waiting for the API's confirmation, for the whole fleet: whichever instance
-- confirms next asks about all of them in one list request (bot/tracking/hooks.py), so the
-- requests per task do not grow with the number of instances. Rows live for a fraction of a
-- second; one whose confirmation is lost is still found by the poller.
CREATE TABLE confirming (
    task_id   TEXT PRIMARY KEY,
    image_url TEXT NOT NULL DEFAULT '',
    heard_at  DOUBLE PRECISION NOT NULL
);

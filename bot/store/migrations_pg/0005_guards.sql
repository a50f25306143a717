-- Several instances on one database: what one process used to remember in memory.

-- An album's window. Telegram sends each part of a media group as its own update, and a load
-- balancer may hand them to different instances: the window counts the parts' arrivals, and
-- the instance whose arrival is still the last one when its wait ends takes every part.
CREATE TABLE albums (
    album      TEXT PRIMARY KEY,
    arrivals   INTEGER NOT NULL,
    started_at DOUBLE PRECISION NOT NULL
);

-- Each part (its message as JSON), kept a day after its album was taken: a redelivered part
-- of a taken album is recognised and dropped.
CREATE TABLE album_parts (
    album    TEXT NOT NULL,
    part     TEXT NOT NULL,
    body     TEXT NOT NULL,
    taken    INTEGER NOT NULL DEFAULT 0,
    added_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (album, part)
);
CREATE INDEX album_parts_added ON album_parts (added_at);

-- A copy of something of a result, posted once whichever instance the presses reach (the
-- original file, the four images, a picture's file, a finished upscale shown again): who
-- posts it (ref NULL since claimed_at) and where it went.
CREATE TABLE copies (
    slot       TEXT PRIMARY KEY,
    ref        TEXT,
    claimed_at DOUBLE PRECISION NOT NULL,
    posted_at  DOUBLE PRECISION
);

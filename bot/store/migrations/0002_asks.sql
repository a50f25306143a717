-- A question the bot asked that waits for an upload (privacy mode: "/blend" alone, then the
-- user replies with the photos). Answered once.
CREATE TABLE asks (
    platform    TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    command     TEXT NOT NULL,
    args        TEXT NOT NULL DEFAULT '',
    lang        TEXT NOT NULL DEFAULT 'en',
    created_at  REAL NOT NULL,
    answered_at REAL,
    PRIMARY KEY (platform, chat_id, message_id)
);

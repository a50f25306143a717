-- Tasks we submitted, keyed by our short key (also sent to the API as `state`).
CREATE TABLE tasks (
    key          TEXT PRIMARY KEY,
    task_id      TEXT UNIQUE,
    parent_key   TEXT,
    platform     TEXT NOT NULL,
    chat_id      TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    lang         TEXT NOT NULL DEFAULT 'en',
    kind         TEXT NOT NULL,
    label        TEXT NOT NULL DEFAULT '',
    prompt       TEXT NOT NULL DEFAULT '',
    mode         TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL,
    progress     INTEGER NOT NULL DEFAULT 0,
    snapshot     TEXT,
    error        TEXT,
    request_ref  TEXT,
    progress_ref TEXT,
    result_ref   TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    finished_at  REAL,
    delivered_at REAL
);
CREATE INDEX tasks_undelivered ON tasks (delivered_at) WHERE delivered_at IS NULL;
CREATE INDEX tasks_user ON tasks (platform, user_id, created_at);

-- A MODAL task waiting for the user's answer (Custom Zoom, remix, region, describe picks).
CREATE TABLE modals (
    key         TEXT PRIMARY KEY REFERENCES tasks (key),
    kind        TEXT NOT NULL,
    prefill     TEXT NOT NULL DEFAULT '',
    ask_chat    TEXT,
    ask_message TEXT,
    created_at  REAL NOT NULL,
    answered_at REAL
);
CREATE UNIQUE INDEX modals_ask ON modals (ask_chat, ask_message);

-- One live child per pressed button: a double press never submits twice.
CREATE TABLE presses (
    parent_key TEXT NOT NULL,
    button     TEXT NOT NULL,
    child_key  TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (parent_key, button)
);

-- Per-user and per-chat preferences as small JSON documents.
CREATE TABLE settings (
    scope TEXT PRIMARY KEY,
    data  TEXT NOT NULL
);

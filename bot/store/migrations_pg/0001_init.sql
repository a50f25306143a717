-- The whole schema as SQLite has it after its migrations 0001-0005 (bot/store/migrations/),
-- in PostgreSQL's types. Times stay seconds since the epoch (DOUBLE PRECISION, as the store's
-- rows carry them), JSON documents stay text: `mjbot migrate --to` copies rows as they are.

-- Tasks we submitted, keyed by our short key (also sent to the API as `state`).
CREATE TABLE tasks (
    key           TEXT PRIMARY KEY,
    task_id       TEXT UNIQUE,
    parent_key    TEXT,
    platform      TEXT NOT NULL,
    chat_id       TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    lang          TEXT NOT NULL DEFAULT 'en',
    kind          TEXT NOT NULL,
    label         TEXT NOT NULL DEFAULT '',
    prompt        TEXT NOT NULL DEFAULT '',
    mode          TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL,
    progress      INTEGER NOT NULL DEFAULT 0,
    snapshot      TEXT,
    error         TEXT,
    request_ref   TEXT,
    progress_ref  TEXT,
    result_ref    TEXT,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL,
    finished_at   DOUBLE PRECISION,
    delivered_at  DOUBLE PRECISION,
    -- Delivery in two steps: a claim (delivering_at) before posting, delivered_at after.
    delivering_at DOUBLE PRECISION,
    -- The charge a task's current run is paid by: what its end settles.
    charge_id     TEXT
);
CREATE INDEX tasks_undelivered ON tasks (delivered_at) WHERE delivered_at IS NULL;
CREATE INDEX tasks_user ON tasks (platform, user_id, created_at);
CREATE INDEX tasks_created ON tasks (created_at);

-- A MODAL task waiting for the user's answer (Custom Zoom, remix, region, describe picks).
CREATE TABLE modals (
    key         TEXT PRIMARY KEY REFERENCES tasks (key),
    kind        TEXT NOT NULL,
    prefill     TEXT NOT NULL DEFAULT '',
    ask_chat    TEXT,
    ask_message TEXT,
    created_at  DOUBLE PRECISION NOT NULL,
    answered_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX modals_ask ON modals (ask_chat, ask_message);

-- One live child per pressed button: a double press never submits twice.
CREATE TABLE presses (
    parent_key TEXT NOT NULL,
    button     TEXT NOT NULL,
    child_key  TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (parent_key, button)
);

-- Per-user and per-chat preferences as small JSON documents.
CREATE TABLE settings (
    scope TEXT PRIMARY KEY,
    data  TEXT NOT NULL
);

-- A question the bot asked that waits for an upload. Answered once.
CREATE TABLE asks (
    platform    TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    command     TEXT NOT NULL,
    args        TEXT NOT NULL DEFAULT '',
    lang        TEXT NOT NULL DEFAULT 'en',
    created_at  DOUBLE PRECISION NOT NULL,
    answered_at DOUBLE PRECISION,
    PRIMARY KEY (platform, chat_id, message_id)
);

-- Updates already acted on (a redelivered Telegram update must not submit twice).
CREATE TABLE seen (
    event   TEXT PRIMARY KEY,
    seen_at DOUBLE PRECISION NOT NULL
);

-- Each charge attempt: who, where, what, how much, and how it ended.
CREATE TABLE ledger (
    id         TEXT PRIMARY KEY,
    task_key   TEXT NOT NULL,
    platform   TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    action     TEXT NOT NULL,
    units      INTEGER NOT NULL,
    outcome    TEXT NOT NULL DEFAULT 'pending',  -- pending, success, refunded or void
    day        TEXT NOT NULL,                    -- UTC date, for daily quotas
    month      TEXT NOT NULL,                    -- UTC year-month
    created_at DOUBLE PRECISION NOT NULL,
    settled_at DOUBLE PRECISION
);
CREATE INDEX ledger_user_day ON ledger (platform, user_id, day);
CREATE INDEX ledger_day ON ledger (day);
CREATE INDEX ledger_task ON ledger (task_key);

-- Access rules changed at run time by admins; they win over the config file's lists.
CREATE TABLE access (
    platform TEXT NOT NULL,
    subject  TEXT NOT NULL,   -- 'user' | 'chat'
    id       TEXT NOT NULL,
    rule     TEXT NOT NULL,   -- 'allow' | 'deny' | 'ban'
    by_user  TEXT NOT NULL,
    at       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (platform, subject, id)
);

-- People seen, so admins can name them by @username.
CREATE TABLE people (
    platform  TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    handle    TEXT NOT NULL DEFAULT '',
    name      TEXT NOT NULL DEFAULT '',
    last_seen DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (platform, user_id)
);
CREATE INDEX people_handle ON people (platform, handle);

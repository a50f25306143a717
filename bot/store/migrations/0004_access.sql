-- Every submission that may cost money: who, where, what, how much, and how it ended.
CREATE TABLE ledger (
    task_key   TEXT PRIMARY KEY,
    platform   TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    action     TEXT NOT NULL,
    units      INTEGER NOT NULL,
    outcome    TEXT NOT NULL DEFAULT 'pending',  -- pending | success | refunded
    day        TEXT NOT NULL,                    -- UTC date, for daily quotas
    month      TEXT NOT NULL,                    -- UTC year-month
    created_at REAL NOT NULL,
    settled_at REAL
);
CREATE INDEX ledger_user_day ON ledger (platform, user_id, day);
CREATE INDEX ledger_day ON ledger (day);

-- Access rules changed at run time by admins (/allow, /deny, /ban, /unban); they win over the
-- config file's lists.
CREATE TABLE access (
    platform TEXT NOT NULL,
    subject  TEXT NOT NULL,   -- 'user' | 'chat'
    id       TEXT NOT NULL,
    rule     TEXT NOT NULL,   -- 'allow' | 'deny' | 'ban'
    by_user  TEXT NOT NULL,
    at       REAL NOT NULL,
    PRIMARY KEY (platform, subject, id)
);

-- People seen, so admins can name them by @username.
CREATE TABLE people (
    platform  TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    handle    TEXT NOT NULL DEFAULT '',
    name      TEXT NOT NULL DEFAULT '',
    last_seen REAL NOT NULL,
    PRIMARY KEY (platform, user_id)
);
CREATE INDEX people_handle ON people (platform, handle);

-- Each charge is a row of its own (an attempt), no longer one row per task: a task can be paid
-- more than once in its life (a press that turned into a question is voided, the answer is
-- charged), and a refund or a settlement touches only the charge its own attempt made. Two
-- answers to one question used to share a row, so the loser's refund undid the winner's charge.
CREATE TABLE ledger_attempts (
    id         TEXT PRIMARY KEY,
    task_key   TEXT NOT NULL,
    platform   TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    action     TEXT NOT NULL,
    units      INTEGER NOT NULL,
    outcome    TEXT NOT NULL DEFAULT 'pending',  -- pending, success, refunded or void
    day        TEXT NOT NULL,
    month      TEXT NOT NULL,
    created_at REAL NOT NULL,
    settled_at REAL
);
-- The rows of older databases keep their task's key as their attempt id.
INSERT INTO ledger_attempts (id, task_key, platform, user_id, chat_id, action, units, outcome,
    day, month, created_at, settled_at)
SELECT task_key, task_key, platform, user_id, chat_id, action, units, outcome, day, month,
    created_at, settled_at FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_attempts RENAME TO ledger;
CREATE INDEX ledger_user_day ON ledger (platform, user_id, day);
CREATE INDEX ledger_day ON ledger (day);
CREATE INDEX ledger_task ON ledger (task_key);

-- The charge a task's current run is paid by: what its end settles.
ALTER TABLE tasks ADD COLUMN charge_id TEXT;
UPDATE tasks SET charge_id = key WHERE key IN (SELECT task_key FROM ledger);

-- Delivery in two steps: a claim (delivering_at) before posting, delivered_at after. A claim
-- left by a killed process is older than the new process and is taken over on start.
ALTER TABLE tasks ADD COLUMN delivering_at REAL;

-- Updates already acted on (a redelivered Telegram update must not submit twice).
CREATE TABLE seen (
    event   TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
);

-- Telegram updates accepted by the webhook receiver and not handled yet (issue 14). The
-- receiver writes an update here before it answers Telegram 200 (after that answer Telegram
-- never sends it again), and deletes it once handled; a row left behind by an instance that
-- died is taken and handled by another one (``take_updates``). Keyed by the gate's event
-- (``telegram:<update_id>``, the key of ``seen``): a redelivery while the first is kept is a
-- no-op, and one handled twice is stopped by ``seen`` as before.
CREATE TABLE inbox (
    event       TEXT PRIMARY KEY,
    body        TEXT NOT NULL,       -- the update's JSON as Telegram posted it
    owner       TEXT NOT NULL,       -- the instance handling it
    received_at DOUBLE PRECISION NOT NULL,
    taken_at    DOUBLE PRECISION NOT NULL, -- when the owner took it, or last said it still has it
    takes       INTEGER NOT NULL DEFAULT 1  -- how many instances took it (a poison update ends)
);
CREATE INDEX inbox_taken ON inbox (taken_at);

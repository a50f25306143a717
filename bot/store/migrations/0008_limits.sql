-- Send slots shared by every instance on one database (bot/limiter.py): one row per scope (a
-- chat's pace, a group's minute, a bot's second), the state of a GCRA rate limiter. Rows are
-- transient: losing them costs at most one burst.
CREATE TABLE send_slots (
    scope TEXT PRIMARY KEY,
    tat   REAL NOT NULL,  -- when the scope's bucket is empty again ("theoretical arrival time")
    last  REAL NOT NULL   -- the latest slot handed out: a scope's slots go out in time order
);

-- Things only one instance may do at a time (Discord's gateway session): held until expires_at
-- unless the owner renews it; a lapsed one is anyone's to take.
CREATE TABLE singletons (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at REAL NOT NULL
);

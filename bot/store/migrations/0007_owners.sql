-- Claims belong to live instances (issue 14): who submitted (or answered) a task, and who is
-- posting its result. A claim is taken over only when that instance's heartbeat has lapsed
-- (``instances.expires_at``), not because it is older than some process's start.
ALTER TABLE tasks ADD COLUMN submitted_by TEXT;
ALTER TABLE tasks ADD COLUMN delivering_by TEXT;

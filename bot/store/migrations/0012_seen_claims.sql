-- A request (a platform update, ``seen.event``) is claimed by the instance handling it and is
-- done only once its effect is durable (bot/usecases/gate.py): ``owner`` is that instance,
-- ``done`` whether it is done. A claim not done whose instance died is taken by the instance
-- the update is replayed on (``claim_request``). Rows written before (and the one-time marks
-- of ``first_time``) have no owner and are done.
ALTER TABLE seen ADD COLUMN owner TEXT;
ALTER TABLE seen ADD COLUMN done INTEGER NOT NULL DEFAULT 1;

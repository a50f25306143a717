-- Who a claim was made for, so that the request's replay may make it again (issue 14: nothing
-- lost on kill -9). An instance killed between a claim and the work's stored row leaves the
-- claim behind; the gate (bot/usecases/gate.py) runs the request once more only when nothing
-- of it was paid, and then the claim is its own to make again:
-- ``asks.answered_by``: the request (``seen.event``) whose answer claimed the ask;
-- ``album_parts.taken_by``: the part whose update took the album (adapters/telegram/albums.py).
ALTER TABLE asks ADD COLUMN answered_by TEXT;
ALTER TABLE album_parts ADD COLUMN taken_by TEXT;

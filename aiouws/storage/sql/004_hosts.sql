-- aiouws schema version 4: global limits across hosts. A claim counts the
-- EXECUTING jobs of its kind (runner lane and fast lane apart: inline_lane) and
-- of each owner across the whole table, wherever they run; the partial index
-- keeps those counts to the executing rows.

ALTER TABLE uws.job
    ADD COLUMN IF NOT EXISTS inline_lane boolean NOT NULL DEFAULT false;

CREATE INDEX IF NOT EXISTS job_executing ON uws.job (kind, inline_lane, owner)
    WHERE phase = 'EXECUTING';

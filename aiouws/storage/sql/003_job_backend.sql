-- aiouws schema version 3: the start time of the database backend that runs a
-- job's query (pg_stat_activity.backend_start), next to its backend_pid. When a
-- runner or its whole server dies, that backend is terminated; pid and start
-- time together tell it from a later backend that got the same pid.

ALTER TABLE uws.job ADD COLUMN IF NOT EXISTS backend_start timestamptz;

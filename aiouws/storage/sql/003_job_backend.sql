-- aiouws schema version 3: the database backends that run a job's query, by
-- pid and start time (pg_stat_activity.backend_start), as its runner reported
-- them (an asyncpg and an ADBC session, say); backend_pid keeps the first. When
-- a runner or its whole server dies, they are terminated; pid and start time
-- together tell a backend from a later one that got the same pid.

ALTER TABLE uws.job
    ADD COLUMN IF NOT EXISTS backend_pids integer[],
    ADD COLUMN IF NOT EXISTS backend_starts timestamptz[];

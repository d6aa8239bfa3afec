-- aiouws schema version 2: job-list indexes that match the list query exactly.
-- The list asks for one owner's (or the anonymous) jobs of one kind, newest
-- first: WHERE owner = $1 (or owner IS NULL) AND kind = $2
-- ORDER BY creation_time DESC, job_id. PostgreSQL does not use an index for
-- "owner IS NULL" plus that order unless a partial index covers it.

DROP INDEX IF EXISTS uws.job_owner_creation;
CREATE INDEX job_owner_list ON uws.job (owner, kind, creation_time DESC, job_id)
    WHERE owner IS NOT NULL;
CREATE INDEX job_anonymous_list ON uws.job (kind, creation_time DESC, job_id)
    WHERE owner IS NULL;

-- aiouws schema version 5: a job is admitted in one statement (one round trip)
-- instead of a transaction of four or five (BEGIN, the owner's lock, the claim
-- lock, the INSERT, COMMIT). The functions take the same advisory locks as
-- before, in the same order, and hold them until the calling statement's
-- transaction ends; each statement in a (volatile) PL/pgSQL function takes a
-- fresh snapshot, so the counts made after a lock is granted see every job
-- committed by the admission that held it before: the caps hold exactly as
-- they did. Both return the new row, or no row when the owner is at the
-- queued cap.

-- A job created PENDING or QUEUED (p_phase) unless its owner (NULL: anonymous)
-- has p_max_queued QUEUED/HELD jobs already.
CREATE OR REPLACE FUNCTION uws.admit_job(
    p_job_id text, p_kind text, p_owner text, p_run_id text,
    p_execution_duration integer, p_destruction_time timestamptz,
    p_parameters jsonb, p_phase uws.phase, p_max_queued integer
) RETURNS SETOF uws.job LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    queued bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(1970763891, hashtext(coalesce(p_owner, '')));
    IF p_owner IS NULL THEN
        SELECT count(*) INTO queued FROM uws.job
        WHERE owner IS NULL AND phase IN ('QUEUED', 'HELD');
    ELSE
        SELECT count(*) INTO queued FROM uws.job
        WHERE owner = p_owner AND phase IN ('QUEUED', 'HELD');
    END IF;
    IF queued >= p_max_queued THEN
        RETURN;
    END IF;
    RETURN QUERY
    INSERT INTO uws.job (job_id, kind, owner, run_id, execution_duration,
                         destruction_time, parameters, phase, queued_time)
    VALUES (p_job_id, p_kind, p_owner, p_run_id, p_execution_duration,
            p_destruction_time, p_parameters, p_phase,
            CASE WHEN p_phase = 'PENDING' THEN NULL ELSE now() END)
    RETURNING *;
END;
$$;

-- A job a fast lane takes at once: under its owner's lock and then the claim
-- lock (the order of aiouws.storage.claims), created EXECUTING with the claim
-- (p_claimed_by, a lease of p_lease_seconds, p_runner_pid) while its owner has
-- fewer than p_max_owner jobs executing and the kind's fast lane fewer than
-- p_max_lane across all hosts, else created p_queued (QUEUED) unless the owner
-- has p_max_queued queued already.
CREATE OR REPLACE FUNCTION uws.admit_claimed_job(
    p_job_id text, p_kind text, p_owner text, p_run_id text,
    p_execution_duration integer, p_destruction_time timestamptz,
    p_parameters jsonb, p_queued uws.phase, p_max_queued integer,
    p_claimed_by text, p_lease_seconds double precision, p_runner_pid integer,
    p_max_owner integer, p_max_lane integer
) RETURNS SETOF uws.job LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    queued bigint;
    executing bigint;
    lane bigint;
    run boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(1970763891, hashtext(coalesce(p_owner, '')));
    PERFORM pg_advisory_xact_lock(1970763892, 0);
    SELECT count(*) FILTER (WHERE phase IN ('QUEUED', 'HELD')),
           count(*) FILTER (WHERE phase = 'EXECUTING')
      INTO queued, executing
      FROM uws.job WHERE owner IS NOT DISTINCT FROM p_owner
       AND phase IN ('QUEUED', 'HELD', 'EXECUTING', 'SUSPENDED');
    SELECT count(*) INTO lane FROM uws.job
     WHERE phase = 'EXECUTING' AND kind = p_kind AND inline_lane;
    run := executing < p_max_owner AND lane < p_max_lane;
    IF NOT run AND queued >= p_max_queued THEN
        RETURN;
    END IF;
    RETURN QUERY
    INSERT INTO uws.job (job_id, kind, owner, run_id, execution_duration,
                         destruction_time, parameters, phase, queued_time,
                         start_time, claimed_by, lease_until, runner_pid,
                         inline_lane)
    VALUES (p_job_id, p_kind, p_owner, p_run_id, p_execution_duration,
            p_destruction_time, p_parameters,
            CASE WHEN run THEN 'EXECUTING'::uws.phase ELSE p_queued END,
            now(), CASE WHEN run THEN now() END,
            CASE WHEN run THEN p_claimed_by END,
            CASE WHEN run THEN now() + make_interval(secs => p_lease_seconds) END,
            CASE WHEN run THEN p_runner_pid END, run)
    RETURNING *;
END;
$$;

-- A change of a final job's row without a phase change (its destruction time)
-- is announced too, as '<job_id> <PHASE> <kind> updated': a process that keeps
-- the final row it wrote (to answer GET and WAIT without reading it) forgets
-- it. Older listeners ignore the four-word payload; waiters are not woken.
-- A job inserted EXECUTING (a fast lane's) is not announced: nobody can wait
-- for a job before its creation returns, and supervisors ignore EXECUTING;
-- that halves the NOTIFY traffic of a fast-lane job, which every process of
-- every host receives and decodes.
CREATE OR REPLACE FUNCTION uws.notify_phase() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('aiouws_job', OLD.job_id || ' DELETED ' || OLD.kind);
        RETURN OLD;
    END IF;
    IF (TG_OP = 'INSERT' AND NEW.phase NOT IN ('PENDING', 'EXECUTING'))
       OR (TG_OP = 'UPDATE' AND NEW.phase IS DISTINCT FROM OLD.phase) THEN
        PERFORM pg_notify('aiouws_job', NEW.job_id || ' ' || NEW.phase || ' ' || NEW.kind);
    ELSIF TG_OP = 'UPDATE'
          AND NEW.phase IN ('COMPLETED', 'ERROR', 'ABORTED', 'ARCHIVED')
          AND NEW IS DISTINCT FROM OLD THEN
        PERFORM pg_notify('aiouws_job',
                          NEW.job_id || ' ' || NEW.phase || ' ' || NEW.kind || ' updated');
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS job_phase_notify ON uws.job;
CREATE TRIGGER job_phase_notify AFTER INSERT OR UPDATE OR DELETE ON uws.job
    FOR EACH ROW EXECUTE FUNCTION uws.notify_phase();

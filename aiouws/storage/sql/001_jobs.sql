-- aiouws schema version 1: the UWS job table.
-- Parameters, results and jobInfo are JSONB arrays on the job row, so that one
-- indexed fetch returns a whole job (no joins on the hot path).

CREATE SCHEMA IF NOT EXISTS uws;

CREATE TYPE uws.phase AS ENUM (
    'PENDING', 'QUEUED', 'EXECUTING', 'COMPLETED', 'ERROR', 'ABORTED',
    'UNKNOWN', 'HELD', 'SUSPENDED', 'ARCHIVED'
);

CREATE TABLE uws.job (
    job_id             text PRIMARY KEY CHECK (job_id ~ '^[A-Za-z0-9_-]{16,64}$'),
    kind               text NOT NULL,
    phase              uws.phase NOT NULL DEFAULT 'PENDING',
    owner              text,
    run_id             text,
    creation_time      timestamptz NOT NULL DEFAULT now(),
    queued_time        timestamptz,
    start_time         timestamptz,
    end_time           timestamptz,
    execution_duration integer NOT NULL DEFAULT 0 CHECK (execution_duration >= 0),
    destruction_time   timestamptz NOT NULL,
    quote              timestamptz,
    parameters         jsonb NOT NULL DEFAULT '[]',
    results            jsonb NOT NULL DEFAULT '[]',
    job_info           jsonb NOT NULL DEFAULT '[]',
    error_type         text CHECK (error_type IN ('fatal', 'transient')),
    error_message      text,
    error_has_detail   boolean NOT NULL DEFAULT false,
    runner_pid         integer,
    backend_pid        integer,
    claimed_by         text,
    lease_until        timestamptz,
    CONSTRAINT end_after_start CHECK (end_time IS NULL OR start_time IS NULL
                                      OR end_time >= start_time),
    CONSTRAINT error_has_message CHECK (error_type IS NULL OR error_message IS NOT NULL),
    CONSTRAINT executing_is_claimed CHECK (phase <> 'EXECUTING' OR claimed_by IS NOT NULL)
);

-- The job list: an owner's jobs, newest first.
CREATE INDEX job_owner_creation ON uws.job (owner, creation_time DESC);
-- The queue: oldest queued job of a kind first.
CREATE INDEX job_queue ON uws.job (kind, queued_time, job_id) WHERE phase = 'QUEUED';
-- Destruction timer and per-owner active counts.
CREATE INDEX job_destruction ON uws.job (destruction_time);
CREATE INDEX job_active ON uws.job (owner, phase)
    WHERE phase IN ('QUEUED', 'EXECUTING', 'HELD', 'SUSPENDED');
CREATE INDEX job_claimed ON uws.job (claimed_by) WHERE phase = 'EXECUTING';

-- Every phase change wakes waiters in every process: channel aiouws_job carries
-- 'job_id phase kind'.
CREATE FUNCTION uws.notify_phase() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('aiouws_job', OLD.job_id || ' DELETED ' || OLD.kind);
        RETURN OLD;
    END IF;
    IF (TG_OP = 'INSERT' AND NEW.phase <> 'PENDING')
       OR (TG_OP = 'UPDATE' AND NEW.phase IS DISTINCT FROM OLD.phase) THEN
        PERFORM pg_notify('aiouws_job', NEW.job_id || ' ' || NEW.phase || ' ' || NEW.kind);
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER job_phase_notify AFTER INSERT OR UPDATE OF phase OR DELETE ON uws.job
    FOR EACH ROW EXECUTE FUNCTION uws.notify_phase();

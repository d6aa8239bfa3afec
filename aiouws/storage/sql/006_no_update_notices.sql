-- Nothing listens for '<job_id> <PHASE> <kind> updated' any more (a GET or
-- WAIT always reads the job, so no process keeps rows to forget): the trigger
-- announces phase changes and deletions only, as before 005. A job inserted
-- EXECUTING (a fast lane's) is still not announced.
CREATE OR REPLACE FUNCTION uws.notify_phase() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('aiouws_job', OLD.job_id || ' DELETED ' || OLD.kind);
        RETURN OLD;
    END IF;
    IF (TG_OP = 'INSERT' AND NEW.phase NOT IN ('PENDING', 'EXECUTING'))
       OR (TG_OP = 'UPDATE' AND NEW.phase IS DISTINCT FROM OLD.phase) THEN
        PERFORM pg_notify('aiouws_job', NEW.job_id || ' ' || NEW.phase || ' ' || NEW.kind);
    END IF;
    RETURN NEW;
END;
$$;

-- Only a phase change, an insert or a deletion can announce anything now, so
-- the trigger fires on those alone: lease renewals and progress writes no
-- longer run the function.
DROP TRIGGER IF EXISTS job_phase_notify ON uws.job;
CREATE TRIGGER job_phase_notify AFTER INSERT OR UPDATE OF phase OR DELETE ON uws.job
    FOR EACH ROW EXECUTE FUNCTION uws.notify_phase();

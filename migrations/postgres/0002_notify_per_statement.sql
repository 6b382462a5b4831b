-- flowstore schema 2 (PostgreSQL): enqueued jobs notify once per statement and
-- queue, not once per row. A batch of 500 jobs made 500 pg_notify calls (folded
-- into one notification at commit, but each call paid for the folding), about a
-- fifth of the enqueue statement. Found by the queue benchmark (P3,
-- docs/performance.md). Updates that make a job ready again (retries, imports)
-- still notify per row: they are few, and a column list cannot go with the
-- transition table a statement trigger needs.

DROP TRIGGER flowstore_jobs_ready_notify ON flowstore_jobs;

CREATE FUNCTION flowstore_notify_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('flowstore_queue', q.tenant || '/' || q.queue)
    FROM (SELECT DISTINCT tenant, queue FROM inserted WHERE state = 'ready') q;
    RETURN NULL;
END
$$;

CREATE TRIGGER flowstore_jobs_inserted_notify
    AFTER INSERT ON flowstore_jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT
    EXECUTE FUNCTION flowstore_notify_jobs_inserted();

CREATE TRIGGER flowstore_jobs_ready_notify
    AFTER UPDATE OF state, run_at ON flowstore_jobs
    FOR EACH ROW WHEN (NEW.state = 'ready')
    EXECUTE FUNCTION flowstore_notify_job();

-- flowstore schema 4 (PostgreSQL): times are TIMESTAMPTZ, exact to the microsecond
-- as the BIGINT microseconds of schemas 1-3 were, so that an operator in psql or a
-- dashboard can write `started_at > now() - interval '1 day'`. The conversion is
-- exact: whole seconds and the remaining microseconds are added separately, so no
-- value passes through a floating-point number.

CREATE FUNCTION pg_temp.flowstore_us_to_ts(us BIGINT) RETURNS TIMESTAMPTZ
    LANGUAGE sql STABLE STRICT AS $$
    SELECT 'epoch'::timestamptz
        + div(us, 1000000) * interval '1 second'
        + mod(us, 1000000) * interval '1 microsecond'
$$;

ALTER TABLE flowstore_workflow_versions
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING pg_temp.flowstore_us_to_ts(created_at);
ALTER TABLE flowstore_documents
    ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING pg_temp.flowstore_us_to_ts(updated_at);
ALTER TABLE flowstore_runs
    ALTER COLUMN started_at TYPE TIMESTAMPTZ USING pg_temp.flowstore_us_to_ts(started_at),
    ALTER COLUMN ended_at TYPE TIMESTAMPTZ USING pg_temp.flowstore_us_to_ts(ended_at);
ALTER TABLE flowstore_run_events
    ALTER COLUMN at TYPE TIMESTAMPTZ USING pg_temp.flowstore_us_to_ts(at);
ALTER TABLE flowstore_metric_points
    ALTER COLUMN at TYPE TIMESTAMPTZ USING pg_temp.flowstore_us_to_ts(at);
-- The ready trigger names run_at; it is dropped around the change and made again as
-- schema 2 made it.
DROP TRIGGER flowstore_jobs_ready_notify ON flowstore_jobs;
ALTER TABLE flowstore_jobs
    ALTER COLUMN run_at TYPE TIMESTAMPTZ USING pg_temp.flowstore_us_to_ts(run_at),
    ALTER COLUMN lease_expires TYPE TIMESTAMPTZ USING pg_temp.flowstore_us_to_ts(lease_expires),
    ALTER COLUMN died_at TYPE TIMESTAMPTZ USING pg_temp.flowstore_us_to_ts(died_at),
    ALTER COLUMN enqueued_at TYPE TIMESTAMPTZ USING pg_temp.flowstore_us_to_ts(enqueued_at);
CREATE TRIGGER flowstore_jobs_ready_notify
    AFTER UPDATE OF state, run_at ON flowstore_jobs
    FOR EACH ROW WHEN (NEW.state = 'ready')
    EXECUTE FUNCTION flowstore_notify_job();

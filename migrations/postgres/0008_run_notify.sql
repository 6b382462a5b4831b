-- flowstore schema 8 (PostgreSQL): a run's watchers are woken, not polling. Every
-- statement that adds events notifies the channel `flowstore_runs` once per run it
-- wrote to, with `<tenant>/<run_id>`; PostgreSQL delivers it at commit, to every
-- node listening, so a watcher reads again only when its run grew (E7). A watcher
-- also reads again every second, for notifications lost while its node's listening
-- connection was down.

CREATE FUNCTION flowstore_notify_run_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('flowstore_runs', r.tenant || '/' || r.run_id)
    FROM (SELECT DISTINCT tenant, run_id FROM inserted) r;
    RETURN NULL;
END
$$;

CREATE TRIGGER flowstore_run_events_notify
    AFTER INSERT ON flowstore_run_events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT
    EXECUTE FUNCTION flowstore_notify_run_events();

-- flowstore schema 1 (PostgreSQL): every concern but credentials.
-- Every table carries the tenant first in its primary key, and every query filters
-- on it (isolation, and the indexes below all start with it).
-- Timestamps are BIGINT microseconds since the Unix epoch (N3: exact on every
-- backend); payloads are JSONB. Text keys sort by bytes (COLLATE "C"), as on every
-- other backend, whatever the database's locale.

CREATE TABLE flowstore_workflows (
    tenant      TEXT COLLATE "C"   NOT NULL,
    workflow_id TEXT COLLATE "C"   NOT NULL,
    -- Highest version ever assigned, deleted ones included (W3). Its row lock
    -- serializes version assignment per workflow (W4).
    high_water  BIGINT NOT NULL,
    PRIMARY KEY (tenant, workflow_id)
);

CREATE TABLE flowstore_workflow_versions (
    tenant       TEXT COLLATE "C"   NOT NULL,
    workflow_id  TEXT COLLATE "C"   NOT NULL,
    version      BIGINT NOT NULL CHECK (version > 0),
    parent       BIGINT,
    author       TEXT,
    created_at   BIGINT NOT NULL,
    content_hash TEXT COLLATE "C"   NOT NULL,
    definition   JSONB  NOT NULL,
    PRIMARY KEY (tenant, workflow_id, version),
    FOREIGN KEY (tenant, workflow_id) REFERENCES flowstore_workflows (tenant, workflow_id)
);

CREATE TABLE flowstore_documents (
    tenant     TEXT COLLATE "C"   NOT NULL,
    collection TEXT COLLATE "C"   NOT NULL,
    id         TEXT COLLATE "C"   NOT NULL,
    revision   BIGINT NOT NULL,
    body       JSONB  NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, collection, id)
);
-- Document filters are pre-selected by containment (`body @> ...`).
CREATE INDEX flowstore_documents_body ON flowstore_documents USING GIN (body jsonb_path_ops);

CREATE TABLE flowstore_runs (
    tenant      TEXT COLLATE "C"   NOT NULL,
    run_id      TEXT COLLATE "C"   NOT NULL,
    workflow_id TEXT COLLATE "C"   NOT NULL,
    version     BIGINT NOT NULL,
    status      TEXT COLLATE "C"   NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
    inputs      JSONB  NOT NULL,
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    output      JSONB,
    error       JSONB,
    -- The sequence number the next event gets.
    next_seq    BIGINT NOT NULL,
    PRIMARY KEY (tenant, run_id)
);
-- E5/E6: newest first, per tenant and per workflow (and status), keyset-paged.
CREATE INDEX flowstore_runs_newest ON flowstore_runs (tenant, started_at DESC, run_id DESC);
CREATE INDEX flowstore_runs_by_workflow ON flowstore_runs (tenant, workflow_id, status, started_at DESC, run_id DESC);

-- The run log: node executions and snapshots are its `step` events.
CREATE TABLE flowstore_run_events (
    tenant TEXT COLLATE "C"   NOT NULL,
    run_id TEXT COLLATE "C"   NOT NULL,
    seq    BIGINT NOT NULL,
    at     BIGINT NOT NULL,
    kind   JSONB  NOT NULL,
    PRIMARY KEY (tenant, run_id, seq),
    FOREIGN KEY (tenant, run_id) REFERENCES flowstore_runs (tenant, run_id) ON DELETE CASCADE
);

-- Metrics: a record per run (idempotence, M1), aggregates folded on record (M2),
-- points for series and baselines (M3), patterns (M4).
CREATE TABLE flowstore_metric_records (
    tenant TEXT COLLATE "C"  NOT NULL,
    run_id TEXT COLLATE "C"  NOT NULL,
    record JSONB NOT NULL,
    PRIMARY KEY (tenant, run_id)
);

CREATE TABLE flowstore_metric_aggregates (
    tenant      TEXT COLLATE "C"   NOT NULL,
    workflow_id TEXT COLLATE "C"   NOT NULL,
    version     BIGINT NOT NULL,
    state       JSONB  NOT NULL,
    PRIMARY KEY (tenant, workflow_id, version)
);

CREATE TABLE flowstore_metric_values (
    tenant      TEXT COLLATE "C"  NOT NULL,
    workflow_id TEXT COLLATE "C"  NOT NULL,
    name        TEXT COLLATE "C"  NOT NULL,
    state       JSONB NOT NULL,
    PRIMARY KEY (tenant, workflow_id, name)
);

CREATE TABLE flowstore_metric_points (
    tenant      TEXT COLLATE "C"             NOT NULL,
    workflow_id TEXT COLLATE "C"             NOT NULL,
    name        TEXT COLLATE "C"             NOT NULL,
    at          BIGINT           NOT NULL,
    run_id      TEXT COLLATE "C"             NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, workflow_id, name, at, run_id)
);

CREATE TABLE flowstore_patterns (
    tenant      TEXT COLLATE "C"             NOT NULL,
    workflow_id TEXT COLLATE "C"             NOT NULL,
    kind        TEXT COLLATE "C"             NOT NULL,
    key         TEXT COLLATE "C"             NOT NULL,
    confidence  DOUBLE PRECISION NOT NULL,
    pattern     JSONB            NOT NULL,
    PRIMARY KEY (tenant, workflow_id, kind, key)
);

-- The job queue. A job is ready when its run-at time has come, or when its lease has
-- expired. Dequeue takes the best ready rows with FOR UPDATE SKIP LOCKED, so
-- concurrent workers never wait on each other nor take the same job.
CREATE SEQUENCE flowstore_job_seq;
CREATE SEQUENCE flowstore_lease_token;

CREATE TABLE flowstore_jobs (
    tenant        TEXT COLLATE "C"    NOT NULL,
    queue         TEXT COLLATE "C"    NOT NULL,
    job_id        TEXT COLLATE "C"    NOT NULL,
    seq           BIGINT  NOT NULL DEFAULT nextval('flowstore_job_seq'),
    payload       JSONB   NOT NULL,
    priority      INTEGER NOT NULL,
    run_at        BIGINT  NOT NULL,
    max_attempts  BIGINT  NOT NULL,
    backoff       JSONB   NOT NULL,
    dedup_key     TEXT,
    attempts      BIGINT  NOT NULL DEFAULT 0,
    state         TEXT COLLATE "C"    NOT NULL CHECK (state IN ('ready', 'leased', 'dead')),
    token         BIGINT,
    lease_expires BIGINT,
    last_error    TEXT,
    died_at       BIGINT,
    enqueued_at   BIGINT  NOT NULL,
    PRIMARY KEY (tenant, queue, job_id)
);
CREATE INDEX flowstore_jobs_ready ON flowstore_jobs (tenant, queue, priority DESC, run_at, seq) WHERE state = 'ready';
CREATE INDEX flowstore_jobs_leased ON flowstore_jobs (tenant, queue, lease_expires) WHERE state = 'leased';
CREATE INDEX flowstore_jobs_dead ON flowstore_jobs (tenant, queue, died_at, job_id) WHERE state = 'dead';
-- Q8: one live job per deduplication key.
CREATE UNIQUE INDEX flowstore_jobs_dedup ON flowstore_jobs (tenant, queue, dedup_key) WHERE dedup_key IS NOT NULL AND state <> 'dead';

-- Q9: waiters LISTEN on flowstore_queue; a job becoming ready notifies
-- "<tenant>/<queue>" (PostgreSQL folds identical notifications of a transaction).
CREATE FUNCTION flowstore_notify_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('flowstore_queue', NEW.tenant || '/' || NEW.queue);
    RETURN NULL;
END
$$;
CREATE TRIGGER flowstore_jobs_ready_notify
    AFTER INSERT OR UPDATE OF state, run_at ON flowstore_jobs
    FOR EACH ROW WHEN (NEW.state = 'ready')
    EXECUTE FUNCTION flowstore_notify_job();

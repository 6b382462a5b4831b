-- flowstore schema 4 (SQLite): the job queue. A job is ready when its run-at time has
-- come, or when its lease has expired; dequeue takes the best ready jobs by priority,
-- run-at time and enqueue order, through the index below.

CREATE TABLE flowstore_jobs (
    tenant        TEXT    NOT NULL,
    queue         TEXT    NOT NULL,
    job_id        TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    payload       TEXT    NOT NULL,
    priority      INTEGER NOT NULL,
    run_at        INTEGER NOT NULL,
    max_attempts  INTEGER NOT NULL,
    backoff       TEXT    NOT NULL,
    dedup_key     TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    state         TEXT    NOT NULL CHECK (state IN ('ready', 'leased', 'dead')),
    token         INTEGER,
    lease_expires INTEGER,
    last_error    TEXT,
    died_at       INTEGER,
    enqueued_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant, queue, job_id)
) WITHOUT ROWID;

CREATE INDEX flowstore_jobs_order ON flowstore_jobs (tenant, queue, priority DESC, run_at, seq);
CREATE INDEX flowstore_jobs_dedup ON flowstore_jobs (tenant, queue, dedup_key) WHERE dedup_key IS NOT NULL;

-- Store-wide counters: enqueue order and fencing tokens.
CREATE TABLE flowstore_counters (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO flowstore_counters (name, value) VALUES ('job_seq', 0), ('lease_token', 0);

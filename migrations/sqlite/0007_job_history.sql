-- flowstore schema 7 (SQLite): cancelling jobs, the finished-job history, progress and
-- output (Q14-Q16), unique periods, concurrency keys and schedules (Q17-Q19). A job now ends `completed` (acked with keep_for), `cancelled` or
-- `dead`, with its finish time; one whose keep_for has passed (`keep_until`) is for
-- prune_finished to remove. SQLite cannot widen a CHECK constraint in place, so the
-- table is rebuilt with the same rows (dead ones get their time of death as finish
-- time) and its indexes are made again under their old names.

CREATE TABLE flowstore_jobs_v7 (
    tenant           TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    job_id           TEXT    NOT NULL,
    seq              INTEGER NOT NULL,
    payload          TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    max_attempts     INTEGER NOT NULL,
    backoff          TEXT    NOT NULL,
    dedup_key        TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    state            TEXT    NOT NULL CHECK (state IN ('ready', 'leased', 'dead', 'completed', 'cancelled')),
    token            INTEGER,
    lease_expires    INTEGER,
    last_error       TEXT,
    died_at          INTEGER,
    enqueued_at      INTEGER NOT NULL,
    -- Q14: a cancel was asked for while the job ran; its holder is told at its next call.
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    -- Q16: the last progress recorded, and the output of the ack (JSON text).
    progress         TEXT,
    output           TEXT,
    -- Q15: how long a finished job stays (microseconds), when it finished, and when
    -- it may be pruned (finished_at + keep_for; NULL keeps it until requeued).
    keep_for         INTEGER,
    finished_at      INTEGER,
    keep_until       INTEGER,
    -- Q18: the key a dequeue's concurrency limit counts running jobs by.
    concurrency_key  TEXT,
    PRIMARY KEY (tenant, queue, job_id)
) WITHOUT ROWID;

INSERT INTO flowstore_jobs_v7 (tenant, queue, job_id, seq, payload, priority, run_at, max_attempts, backoff, dedup_key, attempts, state, token, lease_expires, last_error, died_at, enqueued_at, finished_at)
SELECT tenant, queue, job_id, seq, payload, priority, run_at, max_attempts, backoff, dedup_key, attempts, state, token, lease_expires, last_error, died_at, enqueued_at,
       CASE WHEN state = 'dead' THEN COALESCE(died_at, enqueued_at) END
FROM flowstore_jobs;

DROP TABLE flowstore_jobs;
ALTER TABLE flowstore_jobs_v7 RENAME TO flowstore_jobs;

CREATE INDEX flowstore_jobs_order ON flowstore_jobs (tenant, queue, priority DESC, run_at, seq);
CREATE INDEX flowstore_jobs_dedup ON flowstore_jobs (tenant, queue, dedup_key) WHERE dedup_key IS NOT NULL;
CREATE INDEX flowstore_jobs_leased ON flowstore_jobs (tenant, queue, lease_expires) WHERE state = 'leased';
-- The history, newest finish first, whole or by state (Q15).
CREATE INDEX flowstore_jobs_history ON flowstore_jobs (tenant, queue, finished_at DESC, job_id DESC) WHERE finished_at IS NOT NULL;
CREATE INDEX flowstore_jobs_history_state ON flowstore_jobs (tenant, queue, state, finished_at DESC, job_id DESC) WHERE finished_at IS NOT NULL;
-- Retention: what is due, oldest first, per tenant (Q15).
CREATE INDEX flowstore_jobs_keep_until ON flowstore_jobs (tenant, keep_until) WHERE keep_until IS NOT NULL;

-- Q19: schedules of periodic jobs. `spec` is the stored NewSchedule as JSON; times
-- are microseconds. The due index serves the schedulers' poll.
CREATE TABLE flowstore_schedules (
    tenant   TEXT    NOT NULL,
    name     TEXT    NOT NULL,
    spec     TEXT    NOT NULL,
    anchor   INTEGER NOT NULL,
    next_at  INTEGER NOT NULL,
    paused   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, name)
) WITHOUT ROWID;
CREATE INDEX flowstore_schedules_due ON flowstore_schedules (tenant, next_at) WHERE paused = 0;

-- flowstore schema 7 (PostgreSQL): cancelling jobs, the finished-job history, progress
-- and output (Q14-Q16), unique periods, concurrency keys and schedules (Q17-Q19). A job now ends `completed` (acked with keep_for),
-- `cancelled` or `dead`, with its finish time; one whose keep_for has passed
-- (`keep_until`) is for prune_finished to remove. Dead jobs get their time of death
-- as finish time. A dedup key is held only by a live (ready or leased) job.

ALTER TABLE flowstore_jobs DROP CONSTRAINT flowstore_jobs_state_check;
ALTER TABLE flowstore_jobs ADD CONSTRAINT flowstore_jobs_state_check
    CHECK (state IN ('ready', 'leased', 'dead', 'completed', 'cancelled'));
ALTER TABLE flowstore_jobs
    -- Q14: a cancel was asked for while the job ran; its holder is told at its next call.
    ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT false,
    -- Q16: the last progress recorded, and the output of the ack.
    ADD COLUMN progress JSONB,
    ADD COLUMN output JSONB,
    -- Q15: how long a finished job stays (microseconds), when it finished, and when
    -- it may be pruned (finished_at + keep_for; NULL keeps it until requeued).
    ADD COLUMN keep_for BIGINT,
    ADD COLUMN finished_at TIMESTAMPTZ,
    ADD COLUMN keep_until TIMESTAMPTZ,
    -- Q18: the key a dequeue's concurrency limit counts running jobs by.
    ADD COLUMN concurrency_key TEXT;
UPDATE flowstore_jobs SET finished_at = COALESCE(died_at, enqueued_at) WHERE state = 'dead';

DROP INDEX flowstore_jobs_dedup;
CREATE UNIQUE INDEX flowstore_jobs_dedup ON flowstore_jobs (tenant, queue, dedup_key)
    WHERE dedup_key IS NOT NULL AND state IN ('ready', 'leased');
-- The history, newest finish first, whole or by state (Q15).
CREATE INDEX flowstore_jobs_history ON flowstore_jobs (tenant, queue, finished_at DESC, job_id DESC)
    WHERE finished_at IS NOT NULL;
CREATE INDEX flowstore_jobs_history_state ON flowstore_jobs (tenant, queue, state, finished_at DESC, job_id DESC)
    WHERE finished_at IS NOT NULL;
-- Unique jobs over a period: the newest finished job with a key (Q17).
CREATE INDEX flowstore_jobs_dedup_finished ON flowstore_jobs (tenant, queue, dedup_key, finished_at DESC)
    WHERE dedup_key IS NOT NULL AND finished_at IS NOT NULL;
-- Retention: what is due, oldest first, per tenant (Q15).
CREATE INDEX flowstore_jobs_keep_until ON flowstore_jobs (tenant, keep_until)
    WHERE keep_until IS NOT NULL;

-- Q19: schedules of periodic jobs. `spec` is the stored NewSchedule. The due index
-- serves the schedulers' poll.
CREATE TABLE flowstore_schedules (
    tenant   TEXT COLLATE "C" NOT NULL,
    name     TEXT COLLATE "C" NOT NULL,
    spec     JSONB NOT NULL,
    anchor   TIMESTAMPTZ NOT NULL,
    next_at  TIMESTAMPTZ NOT NULL,
    paused   BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, name)
);
CREATE INDEX flowstore_schedules_due ON flowstore_schedules (tenant, next_at) WHERE NOT paused;

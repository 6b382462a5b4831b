-- flowstore schema 3 (PostgreSQL): queue lookups that no statistics can turn into a
-- scan of the whole queue. Found by the queue benchmark (P3, docs/performance.md).
--
-- Every dequeue reads the ready jobs in order and looks for expired leases. Keyed on
-- (tenant, queue, ...), both lookups competed with the primary key's (tenant, queue)
-- prefix. When a queue had grown faster than its statistics (a new tenant with
-- 50,000 jobs: estimated 1 row) and the partial indexes had bloated with churn,
-- PostgreSQL chose the primary key, read every job of the queue and sorted them, on
-- every dequeue (P3 fell to 2.7k jobs/s). Keyed on the expression
-- tenant || '/' || queue (no tenant or queue name may hold '/'), these lookups can
-- use their own index only: the primary key cannot serve that expression, and the
-- other choice, a sequential scan of the table, never looks cheaper.
--
-- Acknowledgements find their job by its fencing token, unique among leased jobs.

DROP INDEX flowstore_jobs_ready;
CREATE INDEX flowstore_jobs_ready
    ON flowstore_jobs ((tenant || '/' || queue), priority DESC, run_at, seq)
    WHERE state = 'ready';
DROP INDEX flowstore_jobs_leased;
CREATE INDEX flowstore_jobs_leased
    ON flowstore_jobs ((tenant || '/' || queue), lease_expires)
    WHERE state = 'leased';
CREATE UNIQUE INDEX flowstore_jobs_lease_token ON flowstore_jobs (token) WHERE state = 'leased';


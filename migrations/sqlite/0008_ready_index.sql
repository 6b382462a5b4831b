-- flowstore schema 8 (SQLite): the claim's index holds ready jobs only. Since schema 7
-- keeps finished jobs for their keep_for (Q15), the index over every job made each
-- claim step over the kept ones before the first ready job (they sort first: they
-- were enqueued first), so a queue that keeps its history slowed with every job it
-- finished. PostgreSQL's index has been partial since schema 1.

DROP INDEX flowstore_jobs_order;
CREATE INDEX flowstore_jobs_ready ON flowstore_jobs (tenant, queue, priority DESC, run_at, seq) WHERE state = 'ready';

-- flowstore schema 5 (SQLite): an index on leases, so that finding expired leases
-- (rescued or, on their last attempt, dead) reads only the leased jobs of a queue
-- instead of scanning it. Found by the queue benchmark (P3, docs/performance.md).

CREATE INDEX flowstore_jobs_leased ON flowstore_jobs (tenant, queue, lease_expires) WHERE state = 'leased';

-- flowstore schema 9 (PostgreSQL): a transaction counts into one shard per session,
-- not a random shard per statement. Schema 5 picked one of 64 counter rows at
-- random for every INSERT or DELETE, so a transaction of many statements (a unit of
-- work, a client writing a whole run) locked several counter rows of its tenant in
-- random order, and two such transactions deadlocked: PostgreSQL aborted one with
-- `deadlock detected`. Found by P1's whole-run baseline (docs/performance.md), 8
-- writers of one tenant. The shard is now the session's backend pid modulo 64: all of
-- a transaction's counts go to the rows of one shard, and two sessions share a shard
-- only when their pids meet modulo 64.

CREATE OR REPLACE FUNCTION flowstore_count_rows() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO flowstore_tenant_counts (tenant, what, shard, n)
            SELECT tenant, TG_ARGV[0], pg_backend_pid() % 64, count(*) FROM changed_rows GROUP BY tenant
            ON CONFLICT (tenant, what, shard) DO UPDATE SET n = flowstore_tenant_counts.n + EXCLUDED.n;
    ELSE
        INSERT INTO flowstore_tenant_counts (tenant, what, shard, n)
            SELECT tenant, TG_ARGV[0], pg_backend_pid() % 64, -count(*) FROM changed_rows GROUP BY tenant
            ON CONFLICT (tenant, what, shard) DO UPDATE SET n = flowstore_tenant_counts.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;

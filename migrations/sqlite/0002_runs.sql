-- flowstore schema 2 (SQLite): run logs. Events are the log; node executions and
-- variable snapshots are the `step` events. Deleting a run cascades to its events
-- (foreign_keys=ON is set on every connection).

CREATE TABLE flowstore_runs (
    tenant      TEXT    NOT NULL,
    run_id      TEXT    NOT NULL,
    workflow_id TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    inputs      TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    output      TEXT,
    error       TEXT,
    -- The sequence number the next event gets.
    next_seq    INTEGER NOT NULL,
    PRIMARY KEY (tenant, run_id)
) WITHOUT ROWID;

-- E5/E6: newest first, per tenant and per workflow version, keyset-paged.
CREATE INDEX flowstore_runs_newest ON flowstore_runs (tenant, started_at DESC, run_id DESC);
CREATE INDEX flowstore_runs_by_workflow ON flowstore_runs (tenant, workflow_id, version, started_at DESC, run_id DESC);

CREATE TABLE flowstore_run_events (
    tenant TEXT    NOT NULL,
    run_id TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    kind   TEXT    NOT NULL,
    PRIMARY KEY (tenant, run_id, seq),
    FOREIGN KEY (tenant, run_id) REFERENCES flowstore_runs (tenant, run_id) ON DELETE CASCADE
) WITHOUT ROWID;

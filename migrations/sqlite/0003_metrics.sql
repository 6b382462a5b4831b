-- flowstore schema 3 (SQLite): metrics. Aggregates are folded in when a run is
-- recorded (M1) and read without scanning runs (M2); points serve series and
-- baselines (M3) through an index.

CREATE TABLE flowstore_metric_records (
    tenant      TEXT    NOT NULL,
    run_id      TEXT    NOT NULL,
    record      TEXT    NOT NULL,
    PRIMARY KEY (tenant, run_id)
) WITHOUT ROWID;

CREATE TABLE flowstore_metric_aggregates (
    tenant      TEXT    NOT NULL,
    workflow_id TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    state       TEXT    NOT NULL,
    PRIMARY KEY (tenant, workflow_id, version)
) WITHOUT ROWID;

CREATE TABLE flowstore_metric_values (
    tenant      TEXT    NOT NULL,
    workflow_id TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    PRIMARY KEY (tenant, workflow_id, name)
) WITHOUT ROWID;

CREATE TABLE flowstore_metric_points (
    tenant      TEXT    NOT NULL,
    workflow_id TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    run_id      TEXT    NOT NULL,
    value       REAL    NOT NULL,
    PRIMARY KEY (tenant, workflow_id, name, at, run_id)
) WITHOUT ROWID;

CREATE TABLE flowstore_patterns (
    tenant      TEXT    NOT NULL,
    workflow_id TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    confidence  REAL    NOT NULL,
    pattern     TEXT    NOT NULL,
    PRIMARY KEY (tenant, workflow_id, kind, key)
) WITHOUT ROWID;

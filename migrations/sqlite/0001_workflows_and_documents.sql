-- flowstore schema 1 (SQLite): workflow versions and documents.
-- Every table carries the tenant in its primary key; every query filters on it.
-- Timestamps are INTEGER microseconds since the Unix epoch (N3).

CREATE TABLE flowstore_workflows (
    tenant      TEXT    NOT NULL,
    workflow_id TEXT    NOT NULL,
    -- Highest version ever assigned, deleted ones included (W3).
    high_water  INTEGER NOT NULL,
    PRIMARY KEY (tenant, workflow_id)
) WITHOUT ROWID;

CREATE TABLE flowstore_workflow_versions (
    tenant       TEXT    NOT NULL,
    workflow_id  TEXT    NOT NULL,
    version      INTEGER NOT NULL CHECK (version > 0),
    parent       INTEGER,
    author       TEXT,
    created_at   INTEGER NOT NULL,
    content_hash TEXT    NOT NULL,
    definition   TEXT    NOT NULL,
    PRIMARY KEY (tenant, workflow_id, version),
    FOREIGN KEY (tenant, workflow_id) REFERENCES flowstore_workflows (tenant, workflow_id)
) WITHOUT ROWID;

CREATE TABLE flowstore_documents (
    tenant     TEXT    NOT NULL,
    collection TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    revision   INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, collection, id)
) WITHOUT ROWID;

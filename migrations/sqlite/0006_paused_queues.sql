-- flowstore schema 6 (SQLite): paused queues (Q11). A row means the queue delivers
-- nothing until it is resumed; dequeue reads it in its write transaction.

CREATE TABLE flowstore_paused_queues (
    tenant    TEXT    NOT NULL,
    queue     TEXT    NOT NULL,
    paused_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, queue)
) WITHOUT ROWID;

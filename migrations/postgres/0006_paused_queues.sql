-- flowstore schema 6 (PostgreSQL): paused queues (Q11). A row means the queue delivers
-- nothing until it is resumed; the dequeue statement reads it in its own snapshot.

CREATE TABLE flowstore_paused_queues (
    tenant    TEXT COLLATE "C" NOT NULL,
    queue     TEXT COLLATE "C" NOT NULL,
    paused_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, queue)
);

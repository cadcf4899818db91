-- Initial analytics schema. Shared choices:
--  * `organization_id` leads every ORDER BY: every query is scoped to one tenant, so the
--    primary index skips other tenants' granules first.
--  * ids are LowCardinality(String): few distinct values per part, any id format accepted,
--    and Arrow dictionary columns load straight into them.
--  * `revision` and `chunk` identify the slice that `replace_slice` rewrites.
--  * rows expire 90 days after ingestion; partitions are monthly so that, with
--    ttl_only_drop_parts, expiry drops whole parts instead of rewriting them.
--  * missing pitch coordinates (no homography for the frame) are NaN, not Nullable: Nullable
--    would add a null map to every column read.

-- Object detections of the detect stage: about 4.5 M rows per match.
CREATE TABLE IF NOT EXISTS detections
(
    organization_id LowCardinality(String),
    match_id LowCardinality(String),
    revision UInt32,
    chunk UInt32,
    frame UInt32,
    class_id UInt8,
    score Float32,
    x1 Float32 COMMENT 'panorama px',
    y1 Float32 COMMENT 'panorama px',
    x2 Float32 COMMENT 'panorama px',
    y2 Float32 COMMENT 'panorama px',
    pitch_x Float32 COMMENT 'metres, NaN when unknown',
    pitch_y Float32 COMMENT 'metres, NaN when unknown',
    ingested_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (organization_id, match_id, revision, chunk, frame)
TTL ingested_at + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

-- Player and ball positions of the track stage, one row per track per frame. Ordered by
-- frame within a match because the API's main read is "tracks in a time range".
CREATE TABLE IF NOT EXISTS track_points
(
    organization_id LowCardinality(String),
    match_id LowCardinality(String),
    revision UInt32,
    chunk UInt32,
    frame UInt32,
    track_id UInt32,
    team Int8 COMMENT '0 or 1; -1 unknown, referee or ball',
    pitch_x Float32 COMMENT 'metres',
    pitch_y Float32 COMMENT 'metres',
    speed Float32 COMMENT 'metres per second',
    ingested_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (organization_id, match_id, revision, frame, track_id)
TTL ingested_at + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

-- Per-chunk partial statistics of each track, written by the analyze stage with
-- replace_slice and summed over chunks at query time (per-player and per-team stats).
CREATE TABLE IF NOT EXISTS player_stats
(
    organization_id LowCardinality(String),
    match_id LowCardinality(String),
    revision UInt32,
    chunk UInt32,
    track_id UInt32,
    team Int8,
    frames UInt32 COMMENT 'frames in which the track was seen',
    distance_m Float32,
    max_speed Float32 COMMENT 'metres per second',
    sprints UInt16 COMMENT 'runs above the sprint threshold starting in this chunk',
    ingested_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (organization_id, match_id, revision, track_id, chunk)
TTL ingested_at + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

-- The figures a coach reads (issue 17), written by the analyze stage once per match revision
-- (`activities.analyze.figures`). They are match-wide (identities join tracks across chunks,
-- possession and passes span chunk cuts), so these tables have no `chunk`: the analyze stage
-- replaces a whole (match, revision) with `AnalyticsStore.replace_revision`, which also clears
-- the materialized views' targets first, so a retried analysis leaves one copy.
-- Shared choices as in 0001: `organization_id` first in every ORDER BY, 90-day TTL with
-- monthly partitions dropped whole, NaN rather than Nullable.

-- One row per player identity (tracks joined, the analyst's merges and roster applied).
CREATE TABLE IF NOT EXISTS match_player_figures
(
    organization_id LowCardinality(String),
    match_id LowCardinality(String),
    revision UInt32,
    identity_id UInt32 COMMENT 'the identity: its smallest track id',
    team Int8 COMMENT '0 or 1',
    role Int8 COMMENT '0 player, 1 goalkeeper; -1 unknown',
    player String COMMENT 'roster player named by the analyst; empty when none',
    track_ids Array(UInt32) COMMENT 'the tracks that make the identity',
    seconds Float32 COMMENT 'time covered by the path',
    distance_m Float32,
    top_speed Float32 COMMENT 'metres per second',
    walk_s Float32 COMMENT 'seconds under 7 km/h',
    jog_s Float32 COMMENT 'seconds 7 to 14 km/h',
    run_s Float32 COMMENT 'seconds 14 to 20 km/h',
    high_s Float32 COMMENT 'seconds 20 to 25 km/h',
    sprint_s Float32 COMMENT 'seconds over 25 km/h',
    sprints UInt16 COMMENT 'runs over 25 km/h of at least 1 s',
    ingested_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (organization_id, match_id, revision, identity_id)
TTL ingested_at + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

-- One row per team and minute: possession (frames with the ball in play, and of those the
-- team's) and the mean shape of its outfield players (NaN when not measured that minute).
CREATE TABLE IF NOT EXISTS match_team_minutes
(
    organization_id LowCardinality(String),
    match_id LowCardinality(String),
    revision UInt32,
    team Int8,
    minute UInt16 COMMENT 'minute of the match, 0 from its first frame',
    in_play_frames UInt32,
    possession_frames UInt32 COMMENT 'frames of in_play_frames the team had the ball',
    shape_samples UInt32 COMMENT 'frames the shape was measured in; 0: no shape',
    centroid_x Float32 COMMENT 'metres',
    centroid_y Float32 COMMENT 'metres',
    width_m Float32,
    depth_m Float32,
    compactness_m Float32 COMMENT 'mean distance of the players to their centroid',
    hull_area_m2 Float32,
    ingested_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (organization_id, match_id, revision, team, minute)
TTL ingested_at + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

-- Passes, possession changes, ball out of play and restarts, in time order.
CREATE TABLE IF NOT EXISTS match_events
(
    organization_id LowCardinality(String),
    match_id LowCardinality(String),
    revision UInt32,
    frame UInt32,
    minute UInt16,
    kind LowCardinality(String) COMMENT 'pass, possession_change, out_of_play, restart',
    team Int8 COMMENT 'passing, winning or (out of play) last in possession; -1 unknown',
    from_identity Int32 COMMENT 'passer or player who lost the ball; -1 none',
    to_identity Int32 COMMENT 'receiver or player who won the ball; -1 none',
    x Float32 COMMENT 'metres, the ball',
    y Float32,
    to_x Float32 COMMENT 'where the ball was received',
    to_y Float32,
    completed UInt8 COMMENT 'a pass that reached a teammate',
    ingested_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (organization_id, match_id, revision, frame)
TTL ingested_at + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

-- Frames per player, minute and 1 m cell (sparse: only visited cells): a heatmap of any time
-- range is a sum over its minutes.
CREATE TABLE IF NOT EXISTS match_player_cells
(
    organization_id LowCardinality(String),
    match_id LowCardinality(String),
    revision UInt32,
    identity_id UInt32,
    team Int8,
    minute UInt16,
    cell_x UInt8 COMMENT '0..104, metres along the pitch',
    cell_y UInt8 COMMENT '0..67, metres across',
    frames UInt32,
    ingested_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (organization_id, match_id, revision, identity_id, minute, cell_x, cell_y)
TTL ingested_at + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

-- Whole-match heatmaps, kept up to date on insert by materialized views. Summing engines
-- collapse rows only when parts merge: read them with sum(frames) ... GROUP BY.
CREATE TABLE IF NOT EXISTS match_player_heatmaps
(
    organization_id LowCardinality(String),
    match_id LowCardinality(String),
    revision UInt32,
    identity_id UInt32,
    cell_x UInt8,
    cell_y UInt8,
    frames UInt64,
    ingested_at DateTime DEFAULT now()
)
ENGINE = SummingMergeTree(frames)
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (organization_id, match_id, revision, identity_id, cell_x, cell_y)
TTL ingested_at + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS match_player_heatmaps_mv TO match_player_heatmaps AS
SELECT organization_id, match_id, revision, identity_id, cell_x, cell_y,
    toUInt64(frames) AS frames
FROM match_player_cells;

CREATE TABLE IF NOT EXISTS match_team_heatmaps
(
    organization_id LowCardinality(String),
    match_id LowCardinality(String),
    revision UInt32,
    team Int8,
    cell_x UInt8,
    cell_y UInt8,
    frames UInt64,
    ingested_at DateTime DEFAULT now()
)
ENGINE = SummingMergeTree(frames)
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (organization_id, match_id, revision, team, cell_x, cell_y)
TTL ingested_at + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS match_team_heatmaps_mv TO match_team_heatmaps AS
SELECT organization_id, match_id, revision, team, cell_x, cell_y, toUInt64(frames) AS frames
FROM match_player_cells;

-- Events counted per team, minute and kind (passes, completed passes, possession changes...).
CREATE TABLE IF NOT EXISTS match_event_minutes
(
    organization_id LowCardinality(String),
    match_id LowCardinality(String),
    revision UInt32,
    team Int8,
    minute UInt16,
    kind LowCardinality(String),
    events UInt64,
    completed UInt64,
    ingested_at DateTime DEFAULT now()
)
ENGINE = SummingMergeTree((events, completed))
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (organization_id, match_id, revision, team, minute, kind)
TTL ingested_at + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS match_event_minutes_mv TO match_event_minutes AS
SELECT organization_id, match_id, revision, team, minute, kind, toUInt64(1) AS events,
    toUInt64(completed) AS completed
FROM match_events;

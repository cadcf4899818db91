-- The match ball as first-class data (issue 13).

-- The ball's track of the track stage: one row per frame of the match, whether or not the ball
-- is seen, so that "not visible" is stored rather than left to a missing row (the columns of
-- `activities.track.ball_track.BallTrack`). Ordered by frame within a match like
-- track_points: the reads are "the ball in a time range" and "the whole match's ball".
CREATE TABLE IF NOT EXISTS ball_points
(
    organization_id LowCardinality(String),
    match_id LowCardinality(String),
    revision UInt32,
    chunk UInt32,
    frame UInt32,
    pitch_x Float32 COMMENT 'metres, point of the grass under the ball; NaN when not visible',
    pitch_y Float32 COMMENT 'metres; NaN when not visible',
    height_m Float32 COMMENT 'height of the ball centre above the grass; NaN when not visible',
    visible UInt8 COMMENT '1: the tracker reports a position (seen or bridged)',
    observed UInt8 COMMENT '1: a candidate supports it; visible and not observed is bridged',
    in_play UInt8 COMMENT '1: the ball is in play; 0 when not visible',
    confidence Float32 COMMENT '0..1; 0 when not visible',
    ingested_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (organization_id, match_id, revision, frame)
TTL ingested_at + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

-- Per-chunk possession of the analyze stage (`activities.analyze.possession`), written with
-- replace_slice and summed over chunks at query time. Frames with the ball reported (visible,
-- in play) and low only: for each team (0, 1) the frames in which only its players were within
-- reach of the ball, -1 the frames both teams were (contested), -2 those nobody was.
CREATE TABLE IF NOT EXISTS team_possession
(
    organization_id LowCardinality(String),
    match_id LowCardinality(String),
    revision UInt32,
    chunk UInt32,
    team Int8 COMMENT '0 or 1; -1 contested, -2 nobody within reach',
    frames UInt32 COMMENT 'frames of this chunk in which the team had the ball',
    ingested_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (organization_id, match_id, revision, team, chunk)
TTL ingested_at + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

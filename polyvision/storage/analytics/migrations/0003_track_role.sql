-- Role of each track point, assigned by the track stage next to its team: 0 outfield player,
-- 1 goalkeeper, 2 referee, -1 unknown (not assigned, or the ball). The codes are defined once in
-- `polyvision/roles.py`. Rows written before this migration, and by stages that do not set it,
-- read -1 (the DEFAULT). IF NOT EXISTS: a half-applied run can be retried.
ALTER TABLE track_points ADD COLUMN IF NOT EXISTS role Int8 DEFAULT -1
    COMMENT '0 player, 1 goalkeeper, 2 referee; -1 unknown or ball' AFTER team;

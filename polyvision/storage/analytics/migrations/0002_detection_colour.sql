-- Kit colour of each person detection, for the track stage's team assignment: the median
-- CIE Lab colour (L 0..100, a and b about -128..127, cv2's float conversion) of the box's
-- torso band. NaN for the ball, for boxes too small to sample, and for rows written before
-- this migration (the DEFAULT fills them). IF NOT EXISTS: a half-applied run can be retried.
ALTER TABLE detections ADD COLUMN IF NOT EXISTS torso_l Float32 DEFAULT nan
    COMMENT 'torso CIE L*, NaN when unknown' AFTER y2;
ALTER TABLE detections ADD COLUMN IF NOT EXISTS torso_a Float32 DEFAULT nan
    COMMENT 'torso CIE a*, NaN when unknown' AFTER torso_l;
ALTER TABLE detections ADD COLUMN IF NOT EXISTS torso_b Float32 DEFAULT nan
    COMMENT 'torso CIE b*, NaN when unknown' AFTER torso_a;

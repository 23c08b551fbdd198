-- 1 when the relative said a missing person is in danger now (illness, old age, a recent
-- arrest): shown on the staff alert. A flag only, readable without the case key.
ALTER TABLE cases ADD COLUMN urgent INTEGER NOT NULL DEFAULT 0;

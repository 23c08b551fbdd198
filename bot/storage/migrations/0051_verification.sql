-- The verification level of each missing person (issue 15), graded as the Xinjiang Victims
-- Database grades its entries: reported (one source), corroborated (a second independent
-- source), documented (an official document or other evidence). No row: reported.
CREATE TABLE person_verification (
    case_id       INTEGER NOT NULL REFERENCES cases(case_id) ON DELETE CASCADE,
    person_index  INTEGER NOT NULL,           -- 1-based, as staff see persons on the card
    level         TEXT NOT NULL CHECK (level IN ('reported', 'corroborated', 'documented')),
    set_by        INTEGER,                    -- the staff member's Telegram id
    set_at        TEXT NOT NULL,
    PRIMARY KEY (case_id, person_index)
);

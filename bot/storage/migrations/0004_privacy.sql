-- Privacy: where a relative's questionnaire starts in their chat (to offer removing it from the
-- phone after submission), and an audit trail of purges and erasures without personal data.
ALTER TABLE drafts ADD COLUMN first_message_id INTEGER;

CREATE TABLE IF NOT EXISTS privacy_log (
    entry_id  INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    action    TEXT NOT NULL,          -- erase, purge_drafts
    detail    TEXT                    -- counts and case numbers only
);

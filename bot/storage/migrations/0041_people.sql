-- Staff and admins shown by name: the first name and @username Telegram gives with their
-- updates, kept for staff and admins only (never for relatives), refreshed as they act.
CREATE TABLE staff_profiles (
    user_id     INTEGER PRIMARY KEY,
    first_name  TEXT,
    username    TEXT,
    updated_at  TEXT NOT NULL
);

-- /staff add @username: a keyed hash of the @username of each person who wrote to the bot in a
-- private chat, so an admin can name a future staff member. Never the name itself, and never
-- for a relative who reported (cleared when they have a case: their account stays unlinkable
-- by name); it goes with the users row when they erase their data.
ALTER TABLE users ADD COLUMN username_tag BLOB;
CREATE INDEX users_username_tag ON users(username_tag) WHERE username_tag IS NOT NULL;
CREATE TRIGGER users_username_tag_relative AFTER INSERT ON cases WHEN NEW.user_id IS NOT NULL
BEGIN
    UPDATE users SET username_tag = NULL WHERE user_id = NEW.user_id;
END;

-- The key an export gives each missing person: shared by persons linked as the same person
-- (the same Chinese ID, or confirmed by staff), NULL for a person linked to nobody (the export
-- then uses "NUMBER/person"). Kept up to date by CaseworkRepository whenever links change.
ALTER TABLE case_persons ADD COLUMN person_key TEXT;

-- The language an admin chose on the desk (fr, nl, en), remembered with the
-- admin so that a shared school computer shows each admin their own; NULL
-- until one is chosen (the browser's language is used).
ALTER TABLE admins ADD COLUMN lang TEXT;

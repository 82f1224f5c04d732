-- A school's own support contact (schools CSV columns support_email,
-- support_phone, support_url), shown on its failure pages before the global
-- `support` of the config. NULL: not given.
ALTER TABLE schools ADD COLUMN support_email TEXT;
ALTER TABLE schools ADD COLUMN support_phone TEXT;
ALTER TABLE schools ADD COLUMN support_url TEXT;

-- The IdPs trusted for a school beyond `[[idp]] schools` (schools CSV column
-- idp_entity_ids): space-separated entity IDs, sorted, no duplicates.
ALTER TABLE schools ADD COLUMN idp_entity_ids TEXT NOT NULL DEFAULT '';

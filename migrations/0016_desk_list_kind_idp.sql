-- The list filtered by kind or by IdP alone, in the default order: without
-- these the planner takes failures_by_kind / failures_by_idp for the
-- equality and sorts every matching row (770 ms and 270 ms for a first page
-- at 1,000,000 failures); with them a page is an index range, as for the
-- status and the school (0009).
CREATE INDEX failures_list_kind_needs_you ON failures(kind, needs_you, count, last_seen, id);
CREATE INDEX failures_list_idp_needs_you ON failures(idp_entity_id, needs_you, count, last_seen, id);

-- Refused responses whose signature was not verified fold by sender; these
-- indexes keep the fold and the budgets cheap.
CREATE INDEX failures_unverified_by_ip ON failures(client_ip, first_seen)
    WHERE subject IS NULL AND asserted_verified = 0;
CREATE INDEX failures_unverified_by_time ON failures(first_seen)
    WHERE subject IS NULL AND asserted_verified = 0;

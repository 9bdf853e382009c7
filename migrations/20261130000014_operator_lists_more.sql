-- The operator audit log: entries written by platform operators acting as operators (from
-- the operator panel or `slipway admin`), marked when written, so that it neither grows
-- nor shrinks when someone's operator flag changes later.
ALTER TABLE audit_log ADD COLUMN by_operator boolean NOT NULL DEFAULT false;

-- Until now operator actions were the only ones a person took with a reason (or marked
-- `by_operator`, which also finds those whose operator's account is gone, and resent
-- verification mails, which keep a private note instead of a reason).
UPDATE audit_log SET by_operator = true
 WHERE details @> '{"by_operator": true}'
    OR (actor_user_id IS NOT NULL AND details ? 'reason');

CREATE INDEX audit_log_by_operator_idx ON audit_log (id) WHERE by_operator;

-- The fleet-wide site list: newest first, keyset pages; searched by part of a site's name.
CREATE INDEX sites_created_idx ON sites (created_at, id);
CREATE INDEX sites_name_trgm_idx ON sites USING gin (lower(name) gin_trgm_ops);
-- The failed provisionings (few among many sites), newest first.
CREATE INDEX sites_failed_idx ON sites (created_at, id) WHERE status = 'failed';

-- The fleet-wide incident list: newest first, keyset pages.
DROP INDEX incidents_opened_idx;
CREATE INDEX incidents_opened_idx ON incidents (opened_at, id);

-- The subscription list: newest customers first, keyset pages.
CREATE INDEX billing_accounts_created_idx ON billing_accounts (created_at, organization_id);

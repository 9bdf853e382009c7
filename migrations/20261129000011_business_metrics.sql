-- Business metrics for the operator panel (docs/metrics.md): what each organization pays
-- per month, day by day, and the first times an organization became active and paid.

-- The subscription's monthly recurring revenue as Stripe last described it: the licensed
-- price times its quantity, a yearly price as 1/12, discounts subtracted. NULL in local
-- billing mode (plans and catalog prices decide there).
ALTER TABLE billing_accounts
    ADD COLUMN mrr_cents bigint
        CONSTRAINT billing_accounts_mrr_check CHECK (mrr_cents >= 0),
    -- The first failed attempt of the invoice now being collected: unpaid for more than
    -- 30 days, a subscription no longer counts as revenue.
    ADD COLUMN payment_failing_since timestamptz;

UPDATE billing_accounts SET payment_failing_since = updated_at WHERE failed_payments > 0;

ALTER TABLE organizations
    -- The first time one of its sites became active (an activation).
    ADD COLUMN activated_at timestamptz,
    -- The first time it paid for a plan (a conversion).
    ADD COLUMN first_paid_at timestamptz;

UPDATE organizations o
   SET activated_at = (SELECT min(d.finished_at)
                         FROM deployments d JOIN sites s ON s.id = d.site_id
                        WHERE s.organization_id = o.id AND d.status = 'succeeded'
                          AND d.reason = 'create');
UPDATE organizations o
   SET first_paid_at = a.created_at
  FROM billing_accounts a
 WHERE a.organization_id = o.id AND a.stripe_subscription_id IS NOT NULL;

CREATE INDEX organizations_created_idx ON organizations (created_at);
CREATE INDEX organizations_activated_idx ON organizations (activated_at) WHERE activated_at IS NOT NULL;
CREATE INDEX organizations_first_paid_idx ON organizations (first_paid_at) WHERE first_paid_at IS NOT NULL;
CREATE INDEX users_created_idx ON users (created_at);
CREATE INDEX deployments_finished_idx ON deployments (finished_at) WHERE finished_at IS NOT NULL;

-- One row per organization that counted as revenue at the start of `day` (UTC): an
-- organization without a row that day paid nothing. No foreign key: revenue history
-- outlives a deleted organization.
CREATE TABLE mrr_snapshots (
    day             date           NOT NULL,
    organization_id uuid           NOT NULL,
    plan_id         text           NOT NULL,
    billing_interval text          NOT NULL,
    mrr_cents       bigint         NOT NULL CONSTRAINT mrr_snapshots_mrr_check CHECK (mrr_cents > 0),
    -- Covering: a day's amounts are read from the index alone.
    CONSTRAINT mrr_snapshots_pkey PRIMARY KEY (day, organization_id) INCLUDE (mrr_cents)
);

CREATE INDEX mrr_snapshots_organization_idx ON mrr_snapshots (organization_id, day);

-- The days whose snapshot was taken (all of it, in one transaction): a day missing here is
-- read from the latest earlier one, never as "nobody paid".
CREATE TABLE mrr_snapshot_days (
    day          date        PRIMARY KEY,
    billing_mode text        NOT NULL CONSTRAINT mrr_snapshot_days_mode_check CHECK (billing_mode IN ('stripe', 'local')),
    taken_at     timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN (
    'mail', 'stripe_event', 'stripe_meter_event', 'billing_overages',
    'billing_grace_period', 'stripe_reconcile', 'stripe_reconcile_organization',
    'housekeeping', 'incident_alert', 'mrr_snapshot'));

-- Two kinds of job: deleting an organization cancels its Stripe subscription (Stripe is
-- not called inside the deletion's transaction), and a member whose role goes down or who
-- leaves is signed out of the editors of the organization's sites.
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN (
    'mail', 'stripe_event', 'stripe_meter_event', 'billing_overages',
    'billing_grace_period', 'stripe_reconcile', 'stripe_reconcile_organization',
    'stripe_cancel_subscription', 'editor_sign_out', 'housekeeping', 'incident_alert',
    'mrr_snapshot'));

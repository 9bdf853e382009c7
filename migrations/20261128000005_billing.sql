-- Billing: one Stripe customer and at most one subscription per organization, the Stripe
-- events already handled, open checkout sessions (so a double click reuses one) and the
-- overage meter events reported to Stripe.

CREATE TABLE billing_accounts (
    organization_id uuid PRIMARY KEY
        CONSTRAINT billing_accounts_organization_fkey REFERENCES organizations (id) ON DELETE CASCADE,
    stripe_customer_id text NOT NULL CONSTRAINT billing_accounts_customer_key UNIQUE,
    -- The subscription as Slipway last saw it in Stripe (NULL before the first checkout).
    stripe_subscription_id text CONSTRAINT billing_accounts_subscription_key UNIQUE,
    plan_id text,
    billing_interval text CONSTRAINT billing_accounts_interval_check CHECK (billing_interval IN ('monthly', 'yearly')),
    -- Stripe's subscription status: active, trialing, past_due, unpaid, canceled, incomplete,
    -- incomplete_expired, paused.
    status text,
    current_period_end timestamptz,
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    -- Failed attempts of the invoice now being collected (0 once one is paid).
    failed_payments integer NOT NULL DEFAULT 0,
    -- When the subscription ended: the sites are deleted at grace_ends_at unless the
    -- organization subscribes again before.
    canceled_at timestamptz,
    grace_ends_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX billing_accounts_grace_idx ON billing_accounts (grace_ends_at) WHERE grace_ends_at IS NOT NULL;

-- Each Stripe event is handled once: its id is stored before it is processed.
CREATE TABLE stripe_events (
    id text PRIMARY KEY,
    type text NOT NULL,
    -- Stripe's `created` (unix seconds).
    created bigint NOT NULL,
    payload jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text
);

CREATE INDEX stripe_events_pending_idx ON stripe_events (received_at) WHERE processed_at IS NULL;

-- An open Checkout Session per organization and price, reused while it can still be paid.
CREATE TABLE checkout_sessions (
    id text PRIMARY KEY,
    organization_id uuid NOT NULL
        CONSTRAINT checkout_sessions_organization_fkey REFERENCES organizations (id) ON DELETE CASCADE,
    plan_id text NOT NULL,
    billing_interval text NOT NULL,
    url text NOT NULL,
    expires_at timestamptz NOT NULL,
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX checkout_sessions_open_idx ON checkout_sessions (organization_id, plan_id, billing_interval)
    WHERE completed_at IS NULL;

-- Overage reported to Stripe Billing Meters: one row per organization, metric and month,
-- written before it is sent, so a retry sends the same identifier and Stripe counts it once.
CREATE TABLE meter_reports (
    organization_id uuid NOT NULL
        CONSTRAINT meter_reports_organization_fkey REFERENCES organizations (id) ON DELETE CASCADE,
    metric text NOT NULL CONSTRAINT meter_reports_metric_check CHECK (metric IN ('bandwidth', 'storage', 'builds')),
    period date NOT NULL CONSTRAINT meter_reports_period_check CHECK (date_trunc('month', period) = period),
    quantity bigint NOT NULL CONSTRAINT meter_reports_quantity_check CHECK (quantity > 0),
    identifier text NOT NULL CONSTRAINT meter_reports_identifier_key UNIQUE,
    reported_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT meter_reports_pkey PRIMARY KEY (organization_id, metric, period)
);

-- One durable queue for every piece of deferred work (platform::infra::jobs). It replaces
-- the three tables that each retried in their own way: `stripe_events` (gone), the delivery
-- state of `mail_outbox` and the sending state of `meter_reports` (both now jobs). Nothing
-- waiting in them is lost: it becomes a queued job below.

CREATE TABLE jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL
        CONSTRAINT jobs_kind_check CHECK (kind IN (
            'mail', 'stripe_event', 'stripe_meter_event', 'billing_overages',
            'billing_grace_period', 'stripe_reconcile', 'stripe_reconcile_organization',
            'housekeeping')),
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- At most one job ever carries a key (a Stripe event id, a day): enqueue is idempotent.
    unique_key text CONSTRAINT jobs_unique_key UNIQUE,
    state text NOT NULL DEFAULT 'queued'
        CONSTRAINT jobs_state_check CHECK (state IN ('queued', 'running', 'succeeded', 'dead')),
    -- Not before: the first try, or the next retry after a failure.
    run_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    -- The worker holding a running job and its last heartbeat; a job whose heartbeat is
    -- older than the lease is taken up again.
    locked_by text,
    locked_at timestamptz,
    first_attempt_at timestamptz,
    finished_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT jobs_running_is_held CHECK ((state = 'running') = (locked_by IS NOT NULL AND locked_at IS NOT NULL))
);

CREATE INDEX jobs_due_idx ON jobs (run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_running_idx ON jobs (locked_at) WHERE state = 'running';
CREATE INDEX jobs_finished_idx ON jobs (kind, finished_at) WHERE state IN ('succeeded', 'dead');

-- Every attempt: when, by which worker, how it ended (NULL while it runs).
CREATE TABLE job_attempts (
    job_id bigint NOT NULL CONSTRAINT job_attempts_job_fkey REFERENCES jobs (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    worker text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    outcome text CONSTRAINT job_attempts_outcome_check CHECK (outcome IN ('succeeded', 'failed', 'abandoned')),
    error text,
    CONSTRAINT job_attempts_pkey PRIMARY KEY (job_id, attempt)
);

-- Wake the workers (channel `slipway_jobs`, payload: the kind) when a job is queued.
CREATE FUNCTION notify_job() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('slipway_jobs', NEW.kind);
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF state, run_at ON jobs
    FOR EACH ROW WHEN (NEW.state = 'queued') EXECUTE FUNCTION notify_job();

-- Stripe events: handled ones are kept as succeeded jobs (their ids still de-duplicate
-- deliveries); pending ones, and those the old worker gave up on after 20 attempts, are
-- queued again.
INSERT INTO jobs (kind, payload, unique_key, state, attempts, last_error, created_at, finished_at)
SELECT 'stripe_event', payload, 'stripe_event:' || id,
       CASE WHEN processed_at IS NULL THEN 'queued' ELSE 'succeeded' END,
       attempts, last_error, received_at, processed_at
  FROM stripe_events
 ORDER BY received_at;

DROP TABLE stripe_events;

-- Mail not sent yet.
INSERT INTO jobs (kind, payload, unique_key, created_at)
SELECT 'mail', jsonb_build_object('outbox_id', id), 'mail:' || id, created_at
  FROM mail_outbox WHERE sent_at IS NULL
 ORDER BY id;

-- Overage reports Stripe has not confirmed.
INSERT INTO jobs (kind, payload, unique_key, created_at)
SELECT 'stripe_meter_event', jsonb_build_object('identifier', identifier),
       'stripe_meter_event:' || identifier, created_at
  FROM meter_reports WHERE reported_at IS NULL;
ALTER TABLE meter_reports DROP COLUMN attempts, DROP COLUMN last_error;

-- Grace periods running now end through a job at their end.
INSERT INTO jobs (kind, payload, unique_key, run_at)
SELECT 'billing_grace_period', jsonb_build_object('organization_id', organization_id),
       'billing_grace_period:' || organization_id || ':' || floor(extract(epoch FROM grace_ends_at))::bigint,
       grace_ends_at
  FROM billing_accounts WHERE grace_ends_at IS NOT NULL AND status = 'canceled';

-- Operations: what the health monitor sees and does, incidents with their timeline, and
-- who is told.

-- Work that runs once per installation (the monitor) runs under a lease: whoever holds an
-- unexpired row does it; a holder that dies lets it expire and another takes over.
CREATE TABLE leases (
    name       text        PRIMARY KEY,
    holder     uuid        NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Each active site's health as the monitor last judged it, and its recovery state.
CREATE TABLE site_health (
    site_id         uuid        PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
    state           text        NOT NULL DEFAULT 'up'
        CONSTRAINT site_health_state_check CHECK (state IN ('up', 'degraded', 'down', 'crash_looping')),
    -- Since when the site is in `state`.
    since           timestamptz NOT NULL DEFAULT now(),
    -- Why it is not up, in words a customer can read.
    reason          text,
    -- Probes failed in a row.
    failures        integer     NOT NULL DEFAULT 0,
    -- Restarts since the site was last healthy for the reset period.
    restart_attempt integer     NOT NULL DEFAULT 0,
    next_restart_at timestamptz,
    last_restart_at timestamptz,
    -- Up (or degraded) without interruption since.
    healthy_since   timestamptz,
    -- Restarts before this (a deployment made the site healthy) do not count towards
    -- crash looping.
    restarts_counted_from timestamptz,
    last_check_at   timestamptz,
    -- Sampled from the engine with the checks.
    memory_bytes    bigint,
    cpu_percent     real
);

-- Every check's result, kept 48 hours.
CREATE TABLE site_checks (
    site_id     uuid        NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    result      text        NOT NULL CONSTRAINT site_checks_result_check CHECK (result IN ('up', 'degraded', 'down')),
    latency_ms  integer,
    http_status integer,
    -- `probe` (an HTTP request) or `event` (the engine said it died, ran out of memory...).
    source      text        NOT NULL CONSTRAINT site_checks_source_check CHECK (source IN ('probe', 'event')),
    detail      text
);
CREATE INDEX site_checks_site_idx ON site_checks (site_id, at);
CREATE INDEX site_checks_at_idx ON site_checks (at);

-- Checks per site and hour, kept 90 days: the uptime bar, the uptime figures and the
-- response-time chart read these.
CREATE TABLE site_check_hours (
    site_id         uuid        NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    hour            timestamptz NOT NULL CONSTRAINT site_check_hours_hour_check CHECK (date_trunc('hour', hour) = hour),
    checks          integer     NOT NULL DEFAULT 0,
    up              integer     NOT NULL DEFAULT 0,
    degraded        integer     NOT NULL DEFAULT 0,
    -- Probes per latency bucket (platform::monitor::checks::LATENCY_BUCKETS_MS).
    latency_buckets integer[]   NOT NULL DEFAULT '{}',
    PRIMARY KEY (site_id, hour)
);

-- Every restart the monitor made, with how long it waited first.
CREATE TABLE site_restarts (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id   uuid        NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    at        timestamptz NOT NULL DEFAULT now(),
    attempt   integer     NOT NULL,
    -- How the site was brought back: `restart`, `start` or `recreate`.
    action    text        NOT NULL,
    reason    text        NOT NULL,
    waited_ms bigint      NOT NULL
);
CREATE INDEX site_restarts_site_idx ON site_restarts (site_id, at);

-- One incident per site (or organization) and kind while it lasts.
CREATE TABLE incidents (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id     uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    site_id             uuid        REFERENCES sites (id) ON DELETE CASCADE,
    kind                text        NOT NULL CONSTRAINT incidents_kind_check CHECK (kind IN
        ('down', 'crash_looping', 'error_rate', 'usage_warning', 'usage_exceeded',
         'provisioning_failed', 'subscription_ending')),
    -- What within the kind: the limit for usage incidents; '' otherwise.
    subject             text        NOT NULL DEFAULT '',
    summary             text        NOT NULL,
    opened_at           timestamptz NOT NULL DEFAULT now(),
    resolved_at         timestamptz,
    -- When members were mailed that it started, and that it ended.
    alerted_at          timestamptz,
    recovery_alerted_at timestamptz
);
CREATE UNIQUE INDEX incidents_one_open_key ON incidents
    (organization_id, coalesce(site_id, '00000000-0000-0000-0000-000000000000'::uuid), kind, subject)
    WHERE resolved_at IS NULL;
CREATE INDEX incidents_opened_idx ON incidents (opened_at DESC);
CREATE INDEX incidents_organization_idx ON incidents (organization_id, opened_at DESC);
CREATE INDEX incidents_site_idx ON incidents (site_id, opened_at DESC);

CREATE TABLE incident_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id uuid        NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    message     text        NOT NULL
);
CREATE INDEX incident_events_incident_idx ON incident_events (incident_id, at);

-- A member's choice for one kind of alert mail; without a row, the default of their role
-- (owners and admins get them, editors and viewers do not).
CREATE TABLE alert_preferences (
    organization_id uuid    NOT NULL,
    user_id         uuid    NOT NULL,
    kind            text    NOT NULL CONSTRAINT alert_preferences_kind_check CHECK (kind IN ('down', 'crash_looping')),
    enabled         boolean NOT NULL,
    PRIMARY KEY (organization_id, user_id, kind),
    FOREIGN KEY (organization_id, user_id)
        REFERENCES organization_members (organization_id, user_id) ON DELETE CASCADE
);

-- The site's health decides whether the proxy routes to it.
CREATE TRIGGER site_health_notify_route AFTER INSERT OR UPDATE OF state ON site_health
    FOR EACH ROW EXECUTE FUNCTION notify_route_change();

-- The mail that tells members a site has been down for a while is a job, due then.
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN (
    'mail', 'stripe_event', 'stripe_meter_event', 'billing_overages',
    'billing_grace_period', 'stripe_reconcile', 'stripe_reconcile_organization',
    'housekeeping', 'incident_alert'));

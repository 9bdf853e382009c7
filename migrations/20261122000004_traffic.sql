-- Tenant traffic: where the proxy sends a site's visitors, custom domains, suspension,
-- and usage accounting.

-- The container's address on the Slipway network (`ip:port`), written by the reconciler
-- when the site answers its health path. The proxy routes only to `active` sites.
ALTER TABLE sites ADD COLUMN upstream text;
-- A suspended site keeps its container and data; the proxy answers with the suspended page.
ALTER TABLE sites ADD COLUMN suspended_at timestamptz;
ALTER TABLE sites ADD COLUMN suspended_reason text;

CREATE TABLE site_domains (
    id uuid PRIMARY KEY,
    site_id uuid NOT NULL CONSTRAINT site_domains_site_fkey REFERENCES sites (id) ON DELETE CASCADE,
    organization_id uuid NOT NULL
        CONSTRAINT site_domains_organization_fkey REFERENCES organizations (id) ON DELETE CASCADE,
    -- ASCII (punycode) form, lower case, no trailing dot.
    domain text NOT NULL
        CONSTRAINT site_domains_domain_format CHECK (domain ~ '^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$'),
    -- The value of the TXT record `_slipway-challenge.<domain>` that proves control.
    token text NOT NULL,
    verified_at timestamptz,
    last_checked_at timestamptz,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One owner per domain across all organizations.
CREATE UNIQUE INDEX site_domains_domain_key ON site_domains (domain);
CREATE INDEX site_domains_site_idx ON site_domains (site_id);

-- Wake the proxies' route tables (channel `slipway_routes`, payload: the site id).
CREATE FUNCTION notify_route_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('slipway_routes', OLD.site_id::text);
        RETURN OLD;
    END IF;
    IF TG_TABLE_NAME = 'sites' THEN
        PERFORM pg_notify('slipway_routes', NEW.id::text);
    ELSE
        PERFORM pg_notify('slipway_routes', NEW.site_id::text);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER sites_notify_route AFTER INSERT OR UPDATE OF status, upstream, suspended_at, slug, organization_id ON sites
    FOR EACH ROW EXECUTE FUNCTION notify_route_change();
CREATE TRIGGER site_domains_notify_route AFTER INSERT OR UPDATE OR DELETE ON site_domains
    FOR EACH ROW EXECUTE FUNCTION notify_route_change();
-- A plan change alters body and concurrency limits.
CREATE FUNCTION notify_plan_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('slipway_routes', s.id::text) FROM sites s WHERE s.organization_id = NEW.id;
    RETURN NEW;
END
$$;
CREATE TRIGGER organizations_notify_route AFTER UPDATE OF plan_id ON organizations
    FOR EACH ROW EXECUTE FUNCTION notify_plan_change();

-- Traffic per site and hour, added to by every flush of the proxies' in-memory counters.
CREATE TABLE usage_hourly (
    site_id uuid NOT NULL CONSTRAINT usage_hourly_site_fkey REFERENCES sites (id) ON DELETE CASCADE,
    organization_id uuid NOT NULL
        CONSTRAINT usage_hourly_organization_fkey REFERENCES organizations (id) ON DELETE CASCADE,
    hour timestamptz NOT NULL CONSTRAINT usage_hourly_hour_check CHECK (date_trunc('hour', hour) = hour),
    requests bigint NOT NULL DEFAULT 0,
    bytes_in bigint NOT NULL DEFAULT 0,
    bytes_out bigint NOT NULL DEFAULT 0,
    status_1xx bigint NOT NULL DEFAULT 0,
    status_2xx bigint NOT NULL DEFAULT 0,
    status_3xx bigint NOT NULL DEFAULT 0,
    status_4xx bigint NOT NULL DEFAULT 0,
    status_5xx bigint NOT NULL DEFAULT 0,
    page_views bigint NOT NULL DEFAULT 0,
    -- Counts of requests per latency bucket (platform::usage::LATENCY_BUCKETS_MS).
    latency_buckets bigint[] NOT NULL DEFAULT '{}',
    -- Last sampled schema plus volume size, in bytes (a gauge, not a sum).
    storage_bytes bigint,
    CONSTRAINT usage_hourly_pkey PRIMARY KEY (site_id, hour)
);

CREATE INDEX usage_hourly_organization_idx ON usage_hourly (organization_id, hour);

-- What is billed and limited per month: `bandwidth` (bytes in plus out), `requests`
-- (sums) and `storage` (the largest sample of the month, bytes).
CREATE TABLE usage_records (
    site_id uuid NOT NULL CONSTRAINT usage_records_site_fkey REFERENCES sites (id) ON DELETE CASCADE,
    organization_id uuid NOT NULL
        CONSTRAINT usage_records_organization_fkey REFERENCES organizations (id) ON DELETE CASCADE,
    -- The first day of the month (UTC).
    period date NOT NULL CONSTRAINT usage_records_period_check CHECK (date_trunc('month', period) = period),
    metric text NOT NULL CONSTRAINT usage_records_metric_check CHECK (metric IN ('bandwidth', 'requests', 'storage', 'builds')),
    quantity bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT usage_records_pkey PRIMARY KEY (site_id, period, metric)
);

CREATE INDEX usage_records_organization_idx ON usage_records (organization_id, period);

-- Requests, and the 5xx the site itself answered (not the proxy's own pages), per site and
-- minute, kept for an hour: what the monitor reads to judge a site's error rate over the
-- last 15 minutes (`usage_hourly` is too coarse).
-- Added to by the same flush that adds to `usage_hourly`; the monitor deletes rows older
-- than an hour as it reads.
CREATE TABLE usage_minutes (
    site_id         uuid        NOT NULL
        CONSTRAINT usage_minutes_site_fkey REFERENCES sites (id) ON DELETE CASCADE,
    organization_id uuid        NOT NULL
        CONSTRAINT usage_minutes_organization_fkey REFERENCES organizations (id) ON DELETE CASCADE,
    minute          timestamptz NOT NULL
        CONSTRAINT usage_minutes_minute_check CHECK (date_trunc('minute', minute) = minute),
    requests        bigint      NOT NULL DEFAULT 0,
    status_5xx      bigint      NOT NULL DEFAULT 0,
    CONSTRAINT usage_minutes_pkey PRIMARY KEY (site_id, minute)
);
CREATE INDEX usage_minutes_minute_idx ON usage_minutes (minute);

-- The monitor reads this month's usage of every site, and the open incidents of a kind,
-- every minute.
CREATE INDEX usage_records_period_idx ON usage_records (period, metric);
CREATE INDEX incidents_open_kind_idx ON incidents (kind) WHERE resolved_at IS NULL;

-- Members may also choose mail about failing requests and about usage near a plan limit.
ALTER TABLE alert_preferences DROP CONSTRAINT alert_preferences_kind_check;
ALTER TABLE alert_preferences ADD CONSTRAINT alert_preferences_kind_check
    CHECK (kind IN ('down', 'crash_looping', 'error_rate', 'usage'));

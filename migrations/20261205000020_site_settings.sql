-- Per-site environment settings that a site's template offers (`templates[].settings`):
-- plain values as text, secret ones sealed with the master key (written, never shown).
CREATE TABLE site_settings (
    site_id uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    key text NOT NULL CHECK (key ~ '^[A-Z][A-Z0-9_]{0,63}$'),
    value text,
    value_sealed bytea,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid REFERENCES users (id) ON DELETE SET NULL,
    PRIMARY KEY (site_id, key),
    CHECK ((value IS NULL) <> (value_sealed IS NULL))
);

-- A deployment that applies changed settings (the container is recreated with them).
ALTER TABLE deployments DROP CONSTRAINT deployments_reason_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_reason_check CHECK (reason IN
    ('create', 'restart', 'start', 'stop', 'delete', 'plan', 'retry', 'repair', 'reconcile',
     'billing', 'settings'));

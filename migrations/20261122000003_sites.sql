-- Sites, their deployments and each deployment's steps.
--
-- A user's action only changes a site's desired state and bumps its generation; the
-- reconciler (platform::provision) converges the real world (tenant schema and role,
-- Docker image, volume and container) on it and records each step it takes.

-- Tenant roles connect over the network with a password; they must never get into the
-- control plane's own database. (CONNECT is granted to PUBLIC by default.)
DO $$
BEGIN
    EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', current_database());
END
$$;

CREATE TABLE sites (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL
        CONSTRAINT sites_organization_fkey REFERENCES organizations (id) ON DELETE RESTRICT,
    name text NOT NULL,
    slug text NOT NULL
        CONSTRAINT sites_slug_format CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{1,38})[a-z0-9]$'),
    template text NOT NULL,
    -- What the user asked for.
    desired_state text NOT NULL DEFAULT 'running'
        CONSTRAINT sites_desired_state_check CHECK (desired_state IN ('running', 'stopped', 'deleted')),
    generation bigint NOT NULL DEFAULT 1,
    -- What the reconciler last achieved.
    status text NOT NULL DEFAULT 'pending'
        CONSTRAINT sites_status_check CHECK (status IN
            ('pending', 'provisioning', 'active', 'stopping', 'stopped', 'failed', 'deleting', 'deleted')),
    status_reason text,
    -- A dependency the reconciler is waiting for ("Docker engine", "PostgreSQL"), if any.
    waiting_for text,
    observed_generation bigint NOT NULL DEFAULT 0,
    failures integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- Secrets, sealed with the master key (XChaCha20-Poly1305, the site id as associated data).
    db_password_sealed bytea NOT NULL,
    api_token_sealed bytea NOT NULL,
    webhook_secret_sealed bytea NOT NULL,
    container_id text,
    created_by uuid CONSTRAINT sites_created_by_fkey REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT sites_name_length CHECK (length(name) BETWEEN 1 AND 80)
);

-- A slug is free again once its site is deleted.
CREATE UNIQUE INDEX sites_slug_key ON sites (slug) WHERE status <> 'deleted';
CREATE INDEX sites_organization_idx ON sites (organization_id);
CREATE INDEX sites_due_idx ON sites (next_attempt_at) WHERE status <> 'deleted';

CREATE TABLE deployments (
    id uuid PRIMARY KEY,
    site_id uuid NOT NULL CONSTRAINT deployments_site_fkey REFERENCES sites (id) ON DELETE CASCADE,
    generation bigint NOT NULL,
    -- create, restart, start, stop, delete, plan, retry, repair
    reason text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CONSTRAINT deployments_status_check CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    error text,
    requested_by uuid CONSTRAINT deployments_requested_by_fkey REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
);

CREATE INDEX deployments_site_idx ON deployments (site_id, created_at DESC);

CREATE TABLE deployment_steps (
    id bigserial PRIMARY KEY,
    deployment_id uuid NOT NULL
        CONSTRAINT deployment_steps_deployment_fkey REFERENCES deployments (id) ON DELETE CASCADE,
    step text NOT NULL,
    status text NOT NULL DEFAULT 'running'
        CONSTRAINT deployment_steps_status_check CHECK (status IN ('running', 'succeeded', 'failed')),
    detail text,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

CREATE INDEX deployment_steps_deployment_idx ON deployment_steps (deployment_id, id);

-- Wake the reconcilers (channel `slipway_sites`, payload: the site id) whenever what a
-- site should be changes.
CREATE FUNCTION notify_site_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('slipway_sites', NEW.id::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER sites_notify_insert AFTER INSERT ON sites
    FOR EACH ROW EXECUTE FUNCTION notify_site_change();
CREATE TRIGGER sites_notify_desire AFTER UPDATE OF desired_state, generation ON sites
    FOR EACH ROW EXECUTE FUNCTION notify_site_change();

-- One row that identifies this Slipway installation. Several replicas share it: it names
-- the installation (in logs, Stripe metadata, backups), not a process.
CREATE TABLE instance (
    singleton   boolean     PRIMARY KEY DEFAULT true,
    instance_id uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT instance_singleton CHECK (singleton)
);

INSERT INTO instance DEFAULT VALUES;

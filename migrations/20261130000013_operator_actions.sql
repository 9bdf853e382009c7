-- What operators do to accounts and organizations.
-- Operators disable an account (it is signed out everywhere and cannot sign in) and enable
-- it again; the reason is kept with it and in the audit log.
ALTER TABLE users
    ADD COLUMN disabled_at timestamptz,
    ADD COLUMN disabled_reason text,
    ADD CONSTRAINT users_disabled_reason_check
        CHECK ((disabled_at IS NULL) = (disabled_reason IS NULL));

-- The operators' user list: newest first by keyset (sign-ups per week still range over
-- the first column), searched by part of a name (emails have their trigram index already).
DROP INDEX users_created_idx;
CREATE INDEX users_created_idx ON users (created_at, id);
CREATE INDEX users_name_trgm_idx ON users USING gin (lower(name) gin_trgm_ops);

-- One account's history (its sign-ins, failed ones, resets, an operator's actions on it):
-- by the user who acted, and by the user acted on.
CREATE INDEX audit_log_actor_idx ON audit_log (actor_user_id, id) WHERE actor_user_id IS NOT NULL;
CREATE INDEX audit_log_subject_idx ON audit_log (subject, id) WHERE subject LIKE 'user:%';

-- Operators suspend a whole organization: its sites are suspended with the reason and it
-- can create no new one until it is resumed.
ALTER TABLE organizations
    ADD COLUMN suspended_at timestamptz,
    ADD COLUMN suspended_reason text,
    ADD CONSTRAINT organizations_suspended_reason_check
        CHECK ((suspended_at IS NULL) = (suspended_reason IS NULL));

-- The sites an organization's suspension suspended (its resumption lifts those, and only
-- those; an operator cannot resume one of them alone).
ALTER TABLE sites ADD COLUMN suspended_with_organization boolean NOT NULL DEFAULT false;

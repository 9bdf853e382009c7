-- Rules that must hold when requests arrive together, and claims that must not outlive
-- their owner.

-- A custom domain is exclusive once verified, not before: an unverified claim costs nothing
-- to make, so it must not keep the domain's rightful owner out. Whoever proves the TXT
-- record first owns it (the partial index makes the second verification fail).
DROP INDEX site_domains_domain_key;
CREATE UNIQUE INDEX site_domains_verified_key ON site_domains (domain) WHERE verified_at IS NOT NULL;
CREATE UNIQUE INDEX site_domains_site_domain_key ON site_domains (site_id, domain);
CREATE INDEX site_domains_domain_idx ON site_domains (domain);

-- A site being deleted releases its domains at once, whoever deletes it (a member, the
-- end of a grace period, an operator).
CREATE FUNCTION release_site_domains() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM site_domains WHERE site_id = NEW.id;
    RETURN NEW;
END
$$;
CREATE TRIGGER sites_release_domains AFTER UPDATE OF desired_state ON sites
    FOR EACH ROW WHEN (NEW.desired_state = 'deleted' AND OLD.desired_state <> 'deleted')
    EXECUTE FUNCTION release_site_domains();
DELETE FROM site_domains d USING sites s
 WHERE s.id = d.site_id AND s.desired_state = 'deleted';

-- Password-reset requests, counted per address and per IP (each sends a mail).
CREATE TABLE password_reset_requests (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      text        NOT NULL,
    ip         inet,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_reset_requests_email_idx ON password_reset_requests (email, created_at);
CREATE INDEX password_reset_requests_ip_idx ON password_reset_requests (ip, created_at);

-- One checkout at a time per organization, without a transaction held open while Stripe
-- answers: a claim with a lease (platform::billing::checkout).
CREATE TABLE checkout_claims (
    organization_id uuid        PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    token           uuid        NOT NULL,
    expires_at      timestamptz NOT NULL
);

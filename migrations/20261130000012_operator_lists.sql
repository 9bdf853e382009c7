-- Operator lists: search by part of an email, organization name or slug, site slug, custom
-- domain or Stripe id. pg_trgm (a trusted extension: the database's owner may create it)
-- lets `LIKE '%part%'` use an index.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX users_email_trgm_idx ON users USING gin (email gin_trgm_ops);
CREATE INDEX organizations_name_trgm_idx ON organizations USING gin (lower(name) gin_trgm_ops);
CREATE INDEX organizations_slug_trgm_idx ON organizations USING gin (slug gin_trgm_ops);
CREATE INDEX sites_slug_trgm_idx ON sites USING gin (slug gin_trgm_ops);
CREATE INDEX site_domains_domain_trgm_idx ON site_domains USING gin (domain gin_trgm_ops);
CREATE INDEX billing_accounts_customer_trgm_idx
    ON billing_accounts USING gin (lower(stripe_customer_id) gin_trgm_ops);
CREATE INDEX billing_accounts_subscription_trgm_idx
    ON billing_accounts USING gin (lower(stripe_subscription_id) gin_trgm_ops);

-- Keyset pagination of the organization list, newest first (the default order, read
-- backwards); sign-ups per week still range over its first column.
DROP INDEX organizations_created_idx;
CREATE INDEX organizations_created_idx ON organizations (created_at, id);

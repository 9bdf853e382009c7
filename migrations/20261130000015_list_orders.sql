-- The operator lists' A-to-Z orders, read along an index from a page's last row on.
CREATE INDEX sites_slug_order_idx ON sites (slug, id);
CREATE INDEX users_email_order_idx ON users (email, id);

-- The incident list's search by part of the summary (the organization and the site are
-- found through their own trigram indexes).
CREATE INDEX incidents_summary_trgm_idx ON incidents USING gin (lower(summary) gin_trgm_ops);

-- The site's own schema: created by Slipway for this site's role; this role owns it and
-- its search_path points at it, so these tables land there.
CREATE TABLE posts (
    id bigserial PRIMARY KEY,
    slug text NOT NULL CONSTRAINT posts_slug_key UNIQUE
        CONSTRAINT posts_slug_format CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 100),
    title text NOT NULL CONSTRAINT posts_title_length CHECK (length(title) BETWEEN 1 AND 300),
    body text NOT NULL CONSTRAINT posts_body_length CHECK (length(body) <= 1000000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

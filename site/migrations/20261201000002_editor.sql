-- The editor: pages beside posts, drafts, who saved last; sessions opened from Slipway
-- ("Open editor"); sign-in tickets already used; images uploaded to the data volume.
ALTER TABLE posts
    ADD COLUMN kind text NOT NULL DEFAULT 'post' CONSTRAINT posts_kind CHECK (kind IN ('post', 'page')),
    ADD COLUMN status text NOT NULL DEFAULT 'published'
        CONSTRAINT posts_status CHECK (status IN ('draft', 'published')),
    ADD COLUMN author text NOT NULL DEFAULT '';

-- A ticket's nonce, kept until the ticket would have expired anyway: a second use is refused.
CREATE TABLE editor_tickets_used (
    nonce text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

-- A signed-in browser: the SHA-256 of its cookie, never the cookie itself.
CREATE TABLE editor_sessions (
    token_hash text PRIMARY KEY,
    user_id text NOT NULL,
    name text NOT NULL,
    role text NOT NULL CONSTRAINT editor_sessions_role CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    csrf text NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE TABLE uploads (
    name text PRIMARY KEY CONSTRAINT uploads_name_format CHECK (name ~ '^[0-9a-f]{32}\.(png|jpg|gif|webp)$'),
    original text NOT NULL,
    content_type text NOT NULL,
    bytes bigint NOT NULL,
    uploaded_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

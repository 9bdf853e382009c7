-- Slipway signs a member out of the editor when their role goes down or they leave: the
-- sessions opened from tickets issued before then end, and such tickets are refused.
ALTER TABLE editor_sessions ADD COLUMN ticket_issued_at bigint NOT NULL DEFAULT 0;

CREATE TABLE editor_sign_outs (
    user_id text PRIMARY KEY,
    -- Unix seconds on Slipway's clock (a ticket's `iat` is on the same clock).
    issued_before bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Local billing mode: a customer asks for a plan from the billing page, an operator
-- approves (the plan changes in the same transaction) or declines it, and the customer is
-- mailed either way.
CREATE TABLE plan_requests (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    requested_by    uuid        REFERENCES users (id) ON DELETE SET NULL,
    plan_id         text        NOT NULL,
    message         text        NOT NULL DEFAULT '',
    status          text        NOT NULL DEFAULT 'pending',
    decided_by      uuid        REFERENCES users (id) ON DELETE SET NULL,
    decided_at      timestamptz,
    -- The operator's words to the customer, sent with the decision.
    note            text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT plan_requests_status_check
        CHECK (status IN ('pending', 'approved', 'declined', 'withdrawn')),
    CONSTRAINT plan_requests_decided CHECK ((status = 'pending') = (decided_at IS NULL)),
    CONSTRAINT plan_requests_message_length CHECK (char_length(message) <= 2000),
    CONSTRAINT plan_requests_note_length CHECK (char_length(note) <= 500)
);
-- One open request per organization: a second one is refused, never queued behind it.
CREATE UNIQUE INDEX plan_requests_one_pending
    ON plan_requests (organization_id) WHERE status = 'pending';
-- The operator panel's queue, oldest first.
CREATE INDEX plan_requests_pending_queue ON plan_requests (created_at) WHERE status = 'pending';
-- A customer's latest request.
CREATE INDEX plan_requests_organization ON plan_requests (organization_id, created_at DESC);

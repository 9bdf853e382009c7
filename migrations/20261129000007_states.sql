-- Every state stored as a word is a Rust enum (platform::sites::states, SubscriptionStatus,
-- JobState); these constraints hold the columns that had none to the same words.

ALTER TABLE deployments ADD CONSTRAINT deployments_reason_check CHECK (reason IN
    ('create', 'restart', 'start', 'stop', 'delete', 'plan', 'retry', 'repair', 'reconcile', 'billing'));

ALTER TABLE deployment_steps ADD CONSTRAINT deployment_steps_step_check CHECK (step IN
    ('database', 'image', 'container', 'start', 'health', 'stop',
     'remove-container', 'remove-volume', 'drop-database'));

ALTER TABLE billing_accounts ADD CONSTRAINT billing_accounts_status_check CHECK (status IN
    ('incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'unpaid', 'canceled', 'paused'));

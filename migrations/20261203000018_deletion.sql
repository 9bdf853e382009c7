-- Organizations deleted by their owners (or with their last member's account): the row
-- stays for the record (its sites' rows and audit log point at it), with no members left.
ALTER TABLE organizations ADD COLUMN deleted_at timestamptz;

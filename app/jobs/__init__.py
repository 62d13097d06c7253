"""The job queue every background worker claims from (`SELECT … FOR UPDATE SKIP LOCKED`, leases, retries)."""

"""Review: guardrail validators, routing, the compliance queue, and the hash-chained audit trail."""

"""Customer change requests: what is asked, the new values, the assurance needed, the risk, the route."""

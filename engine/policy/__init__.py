"""The decision policy as pure functions: eligibility, candidates, choice."""

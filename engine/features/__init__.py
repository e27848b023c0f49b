"""Point-in-time customer features: one code path for training, batch scoring and the API.

Every feature of a request ``(customer_id, as_of[, message_id])`` is computed from events strictly
before ``as_of`` (see docs/features.md for the exact definitions).
"""

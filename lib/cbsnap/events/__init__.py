"""SCF trigger envelopes: each turns a raw event into request documents plus the
identity of the request (trigger, idempotency key, source id)."""

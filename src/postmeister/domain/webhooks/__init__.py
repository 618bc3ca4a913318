"""Webhooks: HTTPS endpoints that receive the audit trail's events, signed, at least once."""

"""Verification flows: prove you hold a phone or an email by a code (SMS, email) or a link (email)."""

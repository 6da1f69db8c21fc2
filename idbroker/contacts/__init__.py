"""Contacts: phones and emails with their provenance, the primary choice, verification and deliveries."""

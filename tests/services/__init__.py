"""Helpers that start real services (PostgreSQL, OpenLDAP slapd) on loopback for the test session."""

"""Versioned keys: the keyring read from settings, key rotation, and the resumable re-encryption job."""

"""Releasing a person's data to apps: the app registry, release policies, pseudonyms, nicknames, consent,
the release gate (the only way anything about a person leaves the broker) and the per-app change feed."""

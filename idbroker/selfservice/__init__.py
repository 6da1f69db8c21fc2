"""What a signed-in person does for themselves on the broker's pages (their privacy: `privacy.py`)."""

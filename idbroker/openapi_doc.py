"""The OpenAPI document of the app, rendered the one way it is checked in (`openapi/openapi.json`)."""

from __future__ import annotations

import json
from pathlib import Path

from idbroker.config import Settings
from idbroker.web.app import create_app

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def render_openapi() -> str:
    """The app's OpenAPI document as JSON: sorted keys, indent 2, a trailing newline.

    Built from defaults alone (no environment, no database connection), so it is the same on every machine.
    """
    app = create_app(Settings.model_construct(database_url="sqlite://"))
    return json.dumps(app.openapi(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"

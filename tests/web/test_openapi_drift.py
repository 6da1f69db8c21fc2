"""The checked-in OpenAPI document is the one the app generates."""

from __future__ import annotations

import json

from idbroker.openapi_doc import OPENAPI_PATH, render_openapi


def test_the_checked_in_openapi_document_is_current() -> None:
    assert OPENAPI_PATH.exists(), f"{OPENAPI_PATH} is missing: run `idbroker openapi` and commit it"
    assert OPENAPI_PATH.read_text(encoding="utf-8") == render_openapi(), (
        f"{OPENAPI_PATH} is out of date with the app: run `idbroker openapi` and commit the result"
    )


def test_the_document_describes_health_and_readiness() -> None:
    document = json.loads(render_openapi())
    assert document["info"]["title"] == "idbroker"
    ready = document["paths"]["/health/ready"]["get"]["responses"]
    assert ready["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Ready"}
    assert ready["503"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/NotReady"}
    assert document["components"]["schemas"]["Ready"]["required"] == ["status", "database", "schema"]
    assert "/health/live" in document["paths"]

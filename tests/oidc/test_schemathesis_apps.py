"""schemathesis against the checked-in `openapi/openapi.json`: the provider's, the apps API's and the
registry admin API's operations, called over HTTP on a loopback server with generated requests (a bounded
run), find no 5xx and no response that violates the document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from plugins.apps import Campus, MakeApp, app_token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from idbroker.openapi_doc import OPENAPI_PATH

schema = schemathesis.openapi.from_path(OPENAPI_PATH).include(tag_regex="^(oidc|apps|apps-admin)$")
EXAMPLES = 25
# What the issue asks: no 5xx, and every status, content type, header and body as documented. (The probes
# with methods the document does not list are left out: for a path served by two routes, Starlette's 405
# names only one route's methods in `Allow`.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


@pytest.fixture
def api(sqlite_engine: Any, campus: Campus, make_app: MakeApp, live_server: Any, web_client: Any) -> dict[str, Any]:
    _app, secret = make_app("rp1", claims=("pseudonym", "nickname", "name"), lookup_by_number=True)
    return {"url": live_server.url, "headers": {"Authorization": f"Bearer {app_token(web_client, 'rp1', secret)}"}}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_error_and_no_schema_violation(case: Any, api: dict[str, Any]) -> None:
    headers = dict(case.headers or {})
    if case.path.startswith("/api/apps/") and "Authorization" not in headers:
        headers.update(api["headers"])
    case.call_and_validate(base_url=api["url"], headers=headers, checks=CHECKS, timeout=30)

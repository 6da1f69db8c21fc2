"""Server-rendered pages: Jinja2 templates in `templates/`, texts in `i18n/`, Chinese first, English on request.

`render(request, "name.html", **context)` gives every template:
- `t("key", **params)` — the text in the person's language (`?lang=en|zh` switches and is remembered in a
  cookie; Chinese by default); texts live in `i18n/<lang>.yaml` and, for a part of the product that keeps its
  own, `i18n/<lang>/<part>.yaml` (a key defined twice is an error);
- `login` (the `Login` or None), `csrf_token` and `csrf_field()` (the hidden input every POST form needs),
  `lang`, `demo_mode`, `request`;
- the filter `mask` (`1120101234|mask` → `112****234`) for numbers shown on pages.
Pages are `Cache-Control: no-store`: they show personal data. `render` reads the session from the database:
call it from a plain `def` route (FastAPI runs those in a thread), not from an `async def` one.
"""

from __future__ import annotations

from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import yaml
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from idbroker.web.csrf import ANONYMOUS_COOKIE, FIELD, csrf_token
from idbroker.web.session import current_login, set_private_cookie, settings_of

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
I18N_DIR = WEB_DIR / "i18n"
STATIC_DIR = WEB_DIR / "static"
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
LANGUAGE_COOKIE = "idb_lang"


class TranslationError(ValueError):
    """A translation file that cannot be read, or a key defined twice."""


def _read_texts(path: Path, into: dict[str, str]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise TranslationError(f"{path}: expected a mapping of keys to texts")
    for key, text in data.items():
        if key in into:
            raise TranslationError(f"{path}: the key {key!r} is defined twice")
        into[str(key)] = str(text)


@lru_cache
def catalog(lang: str) -> dict[str, str]:
    """Every text of one language."""
    texts: dict[str, str] = {}
    _read_texts(I18N_DIR / f"{lang}.yaml", texts)
    part_dir = I18N_DIR / lang
    if part_dir.is_dir():
        for path in sorted(part_dir.glob("*.yaml")):
            _read_texts(path, texts)
    return texts


def translate(lang: str, key: str, **params: Any) -> str:
    text = catalog(lang).get(key) or catalog(DEFAULT_LANGUAGE).get(key) or key
    return text.format(**params) if params else text


def requested_language(request: Request) -> str | None:
    lang = request.query_params.get("lang")
    return lang if lang in LANGUAGES else None


def language(request: Request) -> str:
    lang = requested_language(request) or request.cookies.get(LANGUAGE_COOKIE)
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def mask_number(value: str | None) -> str:
    """A number as pages show it: its first and last three characters (fewer when short), stars between."""
    if len(value or "") <= 2:
        return "*" * len(value or "")
    assert value is not None
    keep = 3 if len(value) >= 9 else max(1, len(value) // 4)
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]


environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters["mask"] = mask_number


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    token = csrf_token(request)
    html = environment.get_template(name).render(
        request=request,
        lang=lang,
        t=partial(translate, lang),
        login=current_login(request),
        csrf_token=token,
        csrf_field=lambda: Markup(f'<input type="hidden" name="{FIELD}" value="{escape(token)}">'),  # noqa: S704 (escaped)
        demo_mode=settings_of(request).demo_mode,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
    settings = settings_of(request)
    if requested_language(request):
        set_private_cookie(response, settings, LANGUAGE_COOKIE, lang)
    new_secret = getattr(request.state, "idb_csrf_cookie", None)
    if new_secret:
        set_private_cookie(response, settings, ANONYMOUS_COOKIE, new_secret)
    return response

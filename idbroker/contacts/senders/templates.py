"""Message templates (`policies/messages.yaml`, in Chinese): rendering a message for a channel.

A template has an `sms` text, an `email` subject and body, and a `cloud` entry (the provider's registered
template and which placeholders it takes) — each optional, checked at load: only the placeholders the
broker fills in ({code}, {minutes}, {link}, {school}) may appear.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from idbroker.config import Settings
from idbroker.contacts.policy import policy_file

PLACEHOLDERS = frozenset({"code", "minutes", "link", "school"})


def _check_placeholders(text: str) -> str:
    for _literal, field, _spec, _conversion in string.Formatter().parse(text):
        if field is not None and field not in PLACEHOLDERS:
            raise ValueError(f"unknown placeholder {{{field}}} (known: {', '.join(sorted(PLACEHOLDERS))})")
    return text


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmailTemplate(Strict):
    subject: str
    body: str

    @field_validator("subject", "body")
    @classmethod
    def _placeholders(cls, text: str) -> str:
        return _check_placeholders(text)


class CloudTemplate(Strict):
    template_code: str = Field(min_length=1, max_length=64)
    params: list[str] = []

    @field_validator("params")
    @classmethod
    def _known(cls, params: list[str]) -> list[str]:
        unknown = sorted(set(params) - PLACEHOLDERS)
        if unknown:
            raise ValueError(f"unknown placeholder(s) {', '.join(unknown)}")
        return params


class Template(Strict):
    sms: str | None = None
    cloud: CloudTemplate | None = None
    email: EmailTemplate | None = None
    fallback: bool = False

    @field_validator("sms")
    @classmethod
    def _placeholders(cls, text: str | None) -> str | None:
        return _check_placeholders(text) if text is not None else None

    @model_validator(mode="after")
    def _some_channel(self) -> Template:
        if self.sms is None and self.email is None:
            raise ValueError("a template needs an `sms` text or an `email` message")
        if self.cloud is not None and self.sms is None:
            raise ValueError("a `cloud` template needs the `sms` text it stands for")
        return self


class Messages(Strict):
    school: str
    sms_signature: str
    templates: dict[str, Template]


@dataclass(frozen=True)
class Rendered:
    template: str
    channel: str  # sms | email
    text: str  # SMS text, or the email body
    subject: str | None = None
    cloud_template: str | None = None  # the provider's registered template
    cloud_params: dict[str, str] | None = None


def messages(settings: Settings) -> Messages:
    return policy_file(settings, "messages.yaml", Messages)


def channels_of(settings: Settings, template: str) -> set[str]:
    entry = messages(settings).templates[template]
    return {channel for channel, part in (("sms", entry.sms), ("email", entry.email)) if part is not None}


def render(settings: Settings, template: str, channel: str, params: dict[str, str]) -> Rendered:
    """The message `template` on `channel`, its placeholders filled from `params` (and the school's name)."""
    catalogue = messages(settings)
    entry = catalogue.templates.get(template)
    if entry is None:
        raise KeyError(f"no message template {template!r} in messages.yaml")
    values = {"school": catalogue.school, **params}
    if channel == "sms":
        if entry.sms is None:
            raise KeyError(f"message template {template!r} has no SMS text")
        cloud_params = None
        if entry.cloud is not None:
            cloud_params = {name: str(values[name]) for name in entry.cloud.params}
        return Rendered(
            template,
            "sms",
            entry.sms.format(**values),
            cloud_template=entry.cloud.template_code if entry.cloud else None,
            cloud_params=cloud_params,
        )
    if entry.email is None:
        raise KeyError(f"message template {template!r} has no email message")
    return Rendered(template, "email", entry.email.body.format(**values), subject=entry.email.subject.format(**values))

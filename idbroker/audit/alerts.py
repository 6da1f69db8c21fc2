"""Rate alerts: an app or a staff member reading far more than its usual rate (`policies/alerts.yaml`).

For every actor, the reads (events whose action the policy lists) in the last `window_hours` are compared
with its usual rate: its reads over the `baseline_days` before that window, per window. An actor is listed
when it read at least `minimum` times and more than `factor` times its usual rate (an actor with no
history is compared with the minimum alone). Per-actor `overrides` adjust the minimum and factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlmodel import Session

from idbroker.audit.models import AuditEvent
from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.policy import load_policy


class Override(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    actor: str = Field(min_length=1, max_length=64)
    minimum: int | None = Field(default=None, ge=1)
    factor: float | None = Field(default=None, gt=1)


class AlertPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reads: tuple[str, ...] = Field(min_length=1, description="actions that read a person's data")
    window_hours: int = Field(default=24, ge=1, le=24 * 31)
    baseline_days: int = Field(default=28, ge=1, le=366)
    factor: float = Field(default=5.0, gt=1)
    minimum: int = Field(default=100, ge=1)
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class RateAlert:
    actor: str
    reads: int  # in the window
    usual: float  # reads per window over the baseline
    factor: float  # reads / usual (inf with no history)
    window_start: datetime


def policy_file(settings: Settings) -> Path:
    return settings.policies_dir / "alerts.yaml"


def load_alert_policy(settings: Settings) -> AlertPolicy:
    return load_policy(policy_file(settings), AlertPolicy)


def _counts(session: Session, policy: AlertPolicy, start: datetime, end: datetime) -> dict[str, int]:
    rows = session.execute(
        select(AuditEvent.actor, func.count())
        .where(AuditEvent.action.in_(policy.reads), AuditEvent.at >= start, AuditEvent.at < end)  # type: ignore[attr-defined]
        .group_by(AuditEvent.actor)
    )
    return {actor: int(count) for actor, count in rows}


def rate_alerts(session: Session, policy: AlertPolicy, *, now: datetime | None = None) -> list[RateAlert]:
    """The actors over their usual rate right now, the furthest over first."""
    now = now or utcnow()
    window = timedelta(hours=policy.window_hours)
    start = now - window
    recent = _counts(session, policy, start, now)
    history = _counts(session, policy, start - timedelta(days=policy.baseline_days), start)
    windows_in_baseline = timedelta(days=policy.baseline_days) / window
    overrides = {override.actor: override for override in policy.overrides}
    alerts: list[RateAlert] = []
    for actor, reads in recent.items():
        override = overrides.get(actor)
        minimum = (override.minimum if override else None) or policy.minimum
        factor = (override.factor if override else None) or policy.factor
        usual = history.get(actor, 0) / windows_in_baseline
        if reads >= minimum and reads > factor * usual:
            ratio = reads / usual if usual else float("inf")
            alerts.append(RateAlert(actor=actor, reads=reads, usual=round(usual, 2), factor=ratio, window_start=start))
    return sorted(alerts, key=lambda alert: (-alert.factor, -alert.reads, alert.actor))

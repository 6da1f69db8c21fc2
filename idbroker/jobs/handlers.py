"""Which modules hold job handlers: importing them registers their queues with the worker."""

from __future__ import annotations

import importlib

from idbroker.jobs.worker import HANDLERS

# Each capability that queues work adds its module here (it calls `idbroker.jobs.worker.register`).
HANDLER_MODULES: list[str] = [
    "idbroker.contacts.delivery",  # issue 3: SMS and email deliveries, retried with back-off
    "idbroker.contacts.collect",  # issue 3: phones and emails of large imports, in batches
    "idbroker.audit.checkpoints",  # issue 6: periodic signed checkpoints
    "idbroker.audit.retention",  # issue 6: periodic retention
    "idbroker.wecom.callbacks.events",  # issue 5: WeChat Work callbacks, processed after they were acknowledged
    "idbroker.keys.reencrypt",  # issue 7: moving stored values to the current key version, batch by batch
]


def load_handlers() -> list[str]:
    for module in HANDLER_MODULES:
        importlib.import_module(module)
    return sorted(HANDLERS)

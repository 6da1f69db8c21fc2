"""The baseline of `bench/contacts_codes.py`: a bare FastAPI endpoint taking the same JSON body and answering
the same shape as `POST /api/me/phones`, with no database, served by the same uvicorn command as the broker."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class PhoneIn(BaseModel):
    phone: str


@app.get("/health/live")
def live() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/bare", status_code=202)
def bare(body: PhoneIn) -> dict[str, str]:
    expires_at = datetime.now(UTC).isoformat()
    return {"flow": "q3Rk1x0bXn2W8hY5mZpA7g", "channel": "sms", "method": "code", "expires_at": expires_at}

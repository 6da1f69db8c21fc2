"""The baseline of `bench/oidc_load.py`: a bare FastAPI endpoint answering the same JSON shape as userinfo,
with no database, served by the same uvicorn command as the broker."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/bare")
def bare() -> dict[str, str]:
    return {"sub": "7rpom6ogiu6qitncy6pjmxdoiw7dvd23", "nickname": "从容的喜鹊4146"}

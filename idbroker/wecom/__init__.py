"""WeChat Work (企业微信): one member per person, kept in step with the directory; callbacks taken in bursts.

- `userid` — the member's userid: `wx-` + a pseudonym of the person's opaque ID.
- `client`, `token_cache` — the HTTP API (token shared by every worker, limits, retries).
- `desired` → `plan` → `apply` — what the directory wants, the fewest calls to get there, applied resumably.
- `state` — what was pushed (the recorded state), `merge` — members through merges and un-merges.
- `reconcile` (`user/list_id`), `follow` (follow status and the follow report), `invite`.
- `callbacks/` — crypto, durable intake (ack after commit), processing in the worker.
"""

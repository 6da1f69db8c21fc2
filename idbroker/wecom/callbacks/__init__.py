"""WeChat Work callbacks: `crypto` (path/91144), `intake` (durable store, then ack), `events` (the worker)."""

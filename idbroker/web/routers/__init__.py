"""The web routers: each translates HTTP to calls into the core (`login` — CAS sign-in, sign-out, home;
`demo_cas` — the development CAS page, included only in demo mode)."""

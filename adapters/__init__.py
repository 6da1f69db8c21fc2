"""Source adapters, installed as `idbroker_adapters` (a name no other distribution will use).

Each sub-package reads one campus system and exposes `adapter`, an object satisfying
`idbroker.sources.adapter.SourceAdapter`; pyproject.toml registers it in the `idbroker.sources`
entry-point group under the source's name. The core never imports this package: it finds adapters through
those entry points (`idbroker.sources.registry.adapter_for`). A source whose export is a plain CSV/XLSX
table needs no adapter at all, only a mapping file in `policies/sources/`.
"""

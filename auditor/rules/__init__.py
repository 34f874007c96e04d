"""The rule catalog. `load_all()` registers every rule family exactly once; the registry calls it
before answering, so importing one family (e.g. for its metadata) does not import them all."""

from importlib import import_module

FAMILIES = (
    "load",
    "api_use",
    "data",
    "references",
    "reload",
    "security",
    "delivery",
    "change",
    "suppression",
)


def load_all() -> None:
    for family in FAMILIES:
        import_module(f"auditor.rules.{family}")

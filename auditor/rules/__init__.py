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
# The families whose rules have a check of their own (the others only declare the metadata of codes
# that pipeline stages produce), for a snapshot and for a change.
SNAPSHOT_CHECK_FAMILIES = ("api_use", "references", "reload", "security", "delivery")
CHANGE_CHECK_FAMILIES = ("change",)


def load_all() -> None:
    for family in FAMILIES:
        import_module(f"auditor.rules.{family}")

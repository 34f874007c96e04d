"""Maps the absolute paths a policy uses (`/opt/kumomta/etc/policy/sources.toml`) into the audited tree."""

from __future__ import annotations

from pathlib import PurePosixPath

from auditor.core.errors import ConfigError
from auditor.core.record import dataclass
from auditor.source.snapshot import normalize

ETC = "/opt/kumomta/etc/"
POLICY_DIR = "/opt/kumomta/etc/policy/"
SHARE = "/opt/kumomta/share/"

# KumoMTA's package.path prefixes, in order (KUMOMTA.md §1.1)
PACKAGE_PATH = (
    "/opt/kumomta/share/?.lua",
    "/opt/kumomta/share/?/init.lua",
    "/opt/kumomta/etc/policy/?.lua",
    "/opt/kumomta/etc/policy/?/init.lua",
)

# Where the policy entry file sits in an audited tree, tried in order when none is configured.
ENTRY_CANDIDATES = (
    "init.lua",
    "policy/init.lua",
    "etc/policy/init.lua",
    "opt/kumomta/etc/policy/init.lua",
)


@dataclass(frozen=True, slots=True)
class PathMap:
    """Longest-prefix map from absolute deployment paths to directories of the audited tree ("" = root)."""

    entries: tuple[tuple[str, str], ...]

    @classmethod
    def default_for(cls, entry: str) -> PathMap:
        """Default map: `/opt/kumomta/etc/policy/` is the entry file's directory, `/opt/kumomta/etc/` the
        directory above it when that directory is called `policy`, else the same directory."""
        entry_dir = str(PurePosixPath(entry).parent)
        entry_dir = "" if entry_dir == "." else entry_dir
        if PurePosixPath(entry_dir).name == "policy":
            etc_dir = str(PurePosixPath(entry_dir).parent)
            etc_dir = "" if etc_dir == "." else etc_dir
        else:
            etc_dir = entry_dir
        return cls(((POLICY_DIR, entry_dir), (ETC, etc_dir)))

    def with_overrides(self, overrides: dict[str, str]) -> PathMap:
        merged = dict(self.entries)
        for prefix, target in overrides.items():
            if not prefix.startswith("/"):
                raise ConfigError(f"path map prefix {prefix!r} must be an absolute path")
            merged[prefix.rstrip("/") + "/"] = normalize(target)
        return PathMap(tuple(merged.items()))

    @staticmethod
    def parse_option(text: str) -> tuple[str, str]:
        prefix, sep, target = text.partition("=")
        if not sep or not prefix.startswith("/"):
            raise ConfigError(f"--path-map expects /ABSOLUTE/PREFIX=TREE/DIR, got {text!r}")
        return prefix, target

    def to_tree(self, path: str, *, base_dir: str = "") -> str | None:
        """The tree-relative path for `path`, or None when it lies outside every mapped prefix."""
        if not path.startswith("/"):
            joined = normalize(f"{base_dir}/{path}" if base_dir else path)
            return None if joined.startswith("..") else joined
        for prefix, target in sorted(self.entries, key=lambda e: -len(e[0])):
            if path.startswith(prefix) or path == prefix.rstrip("/"):
                rest = path[len(prefix) :]
                joined = normalize(f"{target}/{rest}" if target else rest)
                return None if joined.startswith("..") else joined
        return None

    def to_deployed(self, tree_path: str) -> str | None:
        """Inverse mapping: where a tree file lives on a KumoMTA host (longest target wins)."""
        best: tuple[int, str] | None = None
        for prefix, target in self.entries:
            if target == "" or tree_path == target or tree_path.startswith(target + "/"):
                rest = tree_path[len(target) :].lstrip("/") if target else tree_path
                score = len(target)
                if best is None or score > best[0]:
                    best = (score, prefix + rest)
        return best[1] if best else None

    def as_dict(self) -> dict[str, str]:
        return dict(self.entries)

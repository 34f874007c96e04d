"""Paths as CI systems want them: relative to the repository root, with forward slashes.

Findings carry paths relative to the audited directory; when that directory is not the repository
root, the caller passes its repository-relative location as ``extra["path_prefix"]``.
"""

from __future__ import annotations

from auditor.render.base import RenderInput


def repo_path(data: RenderInput, path: str) -> str:
    """`path` (relative to the audited root) made relative to the repository root."""
    prefix = str(data.extra.get("path_prefix") or "").replace("\\", "/").strip("/")
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    while prefix.startswith("./"):
        prefix = prefix[2:]
    if prefix in ("", "."):
        return path
    return f"{prefix}/{path}"

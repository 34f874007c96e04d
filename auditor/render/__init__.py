"""One renderer module per output format, all behind `render(format, RenderInput, color) -> str`."""

from __future__ import annotations

from importlib import import_module

from auditor.core.errors import UsageError
from auditor.render.base import RenderInput

FORMATS = {
    "text": "auditor.render.text",
    "json": "auditor.render.json_format",
    "sarif": "auditor.render.sarif",
    "github": "auditor.render.github",
    "junit": "auditor.render.junit",
    "codequality": "auditor.render.codequality",
    "markdown": "auditor.render.markdown",
}


def render(fmt: str, data: RenderInput, *, color: bool = False) -> str:
    module_name = FORMATS.get(fmt)
    if module_name is None:
        raise UsageError(f"unknown format {fmt!r} (choose from {', '.join(sorted(FORMATS))})")
    return import_module(module_name).render(data, color=color)

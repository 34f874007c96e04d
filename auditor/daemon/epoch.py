"""Announce a promotion to kumod: `POST /api/admin/bump-config-epoch`, retried with backoff.

Only the configured URL is ever contacted (validated as loopback unless allowed otherwise). Every
attempt's outcome is kept: the result goes into the state, the metrics and the runbook entry.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BumpResult:
    url: str
    ok: bool
    status: int | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "ok": self.ok,
            "status": self.status,
            "attempts": self.attempts,
            "errors": self.errors[-5:],
            "at": self.at,
        }


def bump(
    url: str,
    *,
    attempts: int,
    timeout: float,
    backoff: float,
    sleep: Callable[[float], object] = time.sleep,
    stopping: Callable[[], bool] = lambda: False,
) -> BumpResult:
    result = BumpResult(url=url, ok=False)
    delay = backoff
    for attempt in range(1, attempts + 1):
        result.attempts = attempt
        request = urllib.request.Request(url, data=b"", method="POST")
        try:
            with _opener().open(request, timeout=timeout) as response:
                result.status = response.status
                result.ok = 200 <= response.status < 300
                if result.ok:
                    return result
                result.errors.append(f"HTTP {response.status}")
        except urllib.error.HTTPError as exc:
            result.status = exc.code
            result.errors.append(f"HTTP {exc.code}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            result.errors.append(" ".join(str(reason).split())[:200] or type(exc).__name__)
        if attempt < attempts and not stopping():
            sleep(delay)
            delay *= 2
    return result


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would send the bump somewhere not configured: treat it as an error."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    # no proxy: the endpoint is local, and an environment proxy must not see admin requests
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

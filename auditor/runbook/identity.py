"""Who is writing: the actor behind a decision, the host, and the writer id that names a hash chain.

Actor resolution order: `KUMO_AUDIT_ACTOR` ("Name <email>" or "name"), the person behind sudo
(`SUDO_USER`), the Git config user of the repository, CI variables (`GITHUB_ACTOR`,
`GITLAB_USER_LOGIN`), the daemon's host identity, and finally the login name.

Writer id: `ci:<provider>:<project>:<run>` inside CI (one chain per CI run: runners are ephemeral and
may not hold the branch), otherwise `<kind>:<host>` (one chain per kind of writer per host).
"""

from __future__ import annotations

import getpass
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path

from auditor.runbook.gitutil import config_value
from auditor.runbook.model import Actor, ActorKind

_NAME_EMAIL = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<email>[^<>\s]+)>\s*$")


def split_name_email(text: str) -> tuple[str, str | None]:
    match = _NAME_EMAIL.match(text)
    if match:
        return (match["name"] or match["email"], match["email"])
    return (text.strip(), None)


def ci_provider(env: Mapping[str, str]) -> str | None:
    if env.get("GITHUB_ACTIONS") == "true":
        return "github"
    if env.get("GITLAB_CI") == "true":
        return "gitlab"
    if env.get("CI", "").lower() in ("true", "1"):
        return "ci"
    return None


def resolve_host(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return _one_line(env.get("KUMO_AUDIT_HOST") or socket.gethostname() or "localhost")


def resolve_actor(
    repo: Path | None,
    *,
    kind: ActorKind | None = None,
    env: Mapping[str, str] | None = None,
) -> Actor:
    """The actor for a new entry; `kind` is forced by callers that know it (the daemon)."""
    env = os.environ if env is None else env
    provider = ci_provider(env)
    if kind is None:
        kind = "ci" if provider else "human"

    override = env.get("KUMO_AUDIT_ACTOR", "").strip()
    if override:
        name, email = split_name_email(override)
        return _actor(name, email, kind, "override")
    sudo_user = env.get("SUDO_USER", "").strip()
    if sudo_user and sudo_user != "root":
        return _actor(sudo_user, None, kind, "sudo")
    if repo is not None and kind != "daemon":
        name = config_value(repo, "user.name")
        if name:
            return _actor(name, config_value(repo, "user.email"), kind, "git-config")
    ci_user = env.get("GITHUB_ACTOR") or env.get("GITLAB_USER_LOGIN")
    if ci_user:
        return _actor(ci_user, env.get("GITLAB_USER_EMAIL") or None, kind, "ci")
    if kind == "daemon":
        host = resolve_host(env)
        return _actor(f"kumo-audit@{host}", None, kind, "host-identity")
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return _actor(login, None, kind, "login")


def resolve_writer(actor: Actor, host: str, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    override = env.get("KUMO_AUDIT_WRITER", "").strip()
    if override:
        return _one_line(override)
    if actor.kind == "ci":
        provider = ci_provider(env) or "ci"
        project = env.get("GITHUB_REPOSITORY") or env.get("CI_PROJECT_PATH") or "-"
        run = env.get("GITHUB_RUN_ID") or env.get("CI_PIPELINE_ID") or host
        attempt = env.get("GITHUB_RUN_ATTEMPT") or env.get("CI_JOB_ID")
        run_id = f"{run}.{attempt}" if attempt else run
        return _one_line(f"ci:{provider}:{project}:{run_id}")
    return f"{actor.kind}:{host}"


def _actor(name: str, email: str | None, kind: ActorKind, how: str) -> Actor:
    return Actor(
        name=_one_line(name) or "unknown",
        email=_one_line(email) if email else None,
        kind=kind,
        resolved_by=how,  # type: ignore[arg-type]
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]

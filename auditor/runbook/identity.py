"""Who is writing: the actor behind a decision, the host, and the writer id that names a hash chain.

Actor resolution order: `KUMO_AUDIT_ACTOR` ("Name <email>" or "name"), the person behind sudo
(`SUDO_USER`), inside CI the CI user, the Git author identity as Git itself resolves it (`git var GIT_AUTHOR_IDENT`:
`GIT_AUTHOR_NAME`/`GIT_AUTHOR_EMAIL`, then `author.*`/`user.*` configuration; never a guessed
identity), CI variables (`GITHUB_ACTOR`, `GITLAB_USER_LOGIN`), the daemon's host identity, and
finally the login name.

Writer id (one hash chain per writing store): `KUMO_AUDIT_WRITER` when set; inside CI
`ci:<provider>:<project>:<run>` (one chain per CI run: runners are ephemeral); otherwise
`<kind>:<host>:<random>`, created once per store and kept with it (the clone's Git config key
`kumo-audit.writer-<kind>`, or a `.kumo-audit-writer-<kind>` file of a plain runbook directory), so
two clones on one host, or two hosts with one hostname, are two writers. Ids of the older
`<kind>:<host>` form (`LEGACY_WRITER_RE`) keep verifying.
"""

from __future__ import annotations

import getpass
import os
import re
import secrets
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.core.ci import detect as detect_ci
from auditor.source.git import config_value, git

if TYPE_CHECKING:
    from auditor.runbook.model import Actor, ActorKind

LEGACY_WRITER_RE = re.compile(r"^(human|ci|daemon):[^:\s]+$")
"""Writer ids of the older per-host form: several stores may have written under one of them."""
WRITER_KEY = "kumo-audit.writer-{kind}"
_IDENT_VARS = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "EMAIL")

_NAME_EMAIL = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<email>[^<>\s]+)>\s*$")


def split_name_email(text: str) -> tuple[str, str | None]:
    match = _NAME_EMAIL.match(text)
    if match:
        return (match["name"] or match["email"], match["email"])
    return (text.strip(), None)


def ci_provider(env: Mapping[str, str]) -> str | None:
    """ "github", "gitlab", "ci" (another CI system) or None."""
    name = detect_ci(env).name
    return "ci" if name == "generic" else name


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
    ci_user = env.get("GITHUB_ACTOR") or env.get("GITLAB_USER_LOGIN")
    # On a CI runner the Git identity is the runner's configuration; the CI user is the person.
    if ci_user and kind == "ci":
        return _actor(ci_user, env.get("GITLAB_USER_EMAIL") or None, kind, "ci")
    if kind != "daemon":
        ident = git_identity(repo, env)
        if ident is not None:
            return _actor(ident[0], ident[1], kind, "git-config")
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


def git_identity(repo: Path | None, env: Mapping[str, str]) -> tuple[str, str | None] | None:
    """(name, email) of the Git author identity, resolved by Git; None when Git would have to guess.

    A name configured without an email still names the actor (Git itself would refuse to commit).
    """
    cmd = ["git", "-c", "user.useConfigOnly=true", "var", "GIT_AUTHOR_IDENT"]
    if repo is not None:
        cmd[1:1] = ["-C", str(repo)]
    # Git reads its identity variables from `env`; everything else (PATH, HOME, config) as usual.
    git_env = {k: v for k, v in os.environ.items() if k not in _IDENT_VARS}
    git_env.update({k: v for k, v in env.items() if k in _IDENT_VARS})
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=git_env, check=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if proc.returncode == 0:
        # "Name <email> 1700000000 +0000": the name and email, without the time stamp.
        ident = proc.stdout.strip().rsplit(" ", 2)[0]
        name, email = split_name_email(ident)
        if name:
            return name, email
    name = env.get("GIT_AUTHOR_NAME", "").strip()
    if not name and repo is not None:
        name = config_value(repo, "author.name") or config_value(repo, "user.name") or ""
    return (name, None) if name.strip() else None


def resolve_writer(
    actor: Actor,
    host: str,
    env: Mapping[str, str] | None = None,
    *,
    repo: Path | None = None,
    directory: Path | None = None,
) -> str:
    """The writer id of the store being written: from the environment, CI, or kept with the store.

    `repo` is the clone whose Git config keeps the id; `directory` a plain runbook directory
    (used when there is no clone). An id is created on first use and never changes afterwards.
    """
    env = os.environ if env is None else env
    override = env.get("KUMO_AUDIT_WRITER", "").strip()
    if override:
        return _writer_text(override)
    if actor.kind == "ci" and ci_provider(env):
        provider = ci_provider(env) or "ci"
        project = env.get("GITHUB_REPOSITORY") or env.get("CI_PROJECT_PATH") or "-"
        run = env.get("GITHUB_RUN_ID") or env.get("CI_PIPELINE_ID") or host
        attempt = env.get("GITHUB_RUN_ATTEMPT") or env.get("CI_JOB_ID")
        run_id = f"{run}.{attempt}" if attempt else run
        return _writer_text(f"ci:{provider}:{project}:{run_id}")
    if repo is not None:
        return store_writer_id(repo, actor.kind, host)
    if directory is not None:
        return dir_writer_id(directory, actor.kind, host)
    return new_writer_id(actor.kind, host)


def new_writer_id(kind: str, host: str) -> str:
    return _writer_text(f"{kind}:{host}:{secrets.token_hex(4)}")


def store_writer_id(repo: Path, kind: str, host: str) -> str:
    """The writer id kept in `repo`'s own Git config (created there on first use)."""
    key = WRITER_KEY.format(kind=kind)
    current = config_value(repo, key)
    if current:
        return current
    writer = new_writer_id(kind, host)
    git(repo, "config", "--local", key, writer)
    return writer


def dir_writer_id(directory: Path, kind: str, host: str) -> str:
    path = directory / f".kumo-audit-writer-{kind}"
    try:
        current = path.read_text(encoding="utf-8").strip()
    except OSError:
        current = ""
    if current:
        return _writer_text(current)
    writer = new_writer_id(kind, host)
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(writer + "\n", encoding="utf-8")
    return writer


def _writer_text(text: str) -> str:
    """Writer ids are also OpenSSH principal names: one word, no commas or quotes."""
    return re.sub(r"[\s,\"']+", "-", text.strip())[:200]


def _actor(name: str, email: str | None, kind: ActorKind, how: str) -> Actor:
    from auditor.runbook.model import Actor

    return Actor(
        name=_one_line(name) or "unknown",
        email=_one_line(email) if email else None,
        kind=kind,
        resolved_by=how,  # type: ignore[arg-type]
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]

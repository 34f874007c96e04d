"""Which CI system runs us, from its environment variables: base branch, actor, project, run and
links to the run. The one place that knows the CI providers' variables (the `ci` command and the
runbook's actor and writer identities both read it)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class CiEnvironment:
    name: str | None = None  # "github", "gitlab", "generic"; None outside CI
    base_ref: str | None = None
    actor: str | None = None
    links: list[tuple[str, str]] = field(default_factory=list)
    actor_email: str | None = None
    project: str | None = None
    run: str | None = None  # the run (pipeline) id
    attempt: str | None = None  # the attempt (job) id within the run


def detect(env: Mapping[str, str] | None = None) -> CiEnvironment:
    env = dict(os.environ if env is None else env)
    if env.get("GITHUB_ACTIONS") == "true":
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        repo = env.get("GITHUB_REPOSITORY", "")
        run_id = env.get("GITHUB_RUN_ID", "")
        base = env.get("GITHUB_BASE_REF")
        links = [("CI run", f"{server}/{repo}/actions/runs/{run_id}")] if repo and run_id else []
        return CiEnvironment(
            "github",
            f"origin/{base}" if base else None,
            env.get("GITHUB_ACTOR"),
            links,
            project=repo or None,
            run=run_id or None,
            attempt=env.get("GITHUB_RUN_ATTEMPT"),
        )
    if env.get("GITLAB_CI") == "true":
        base = env.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME") or env.get("CI_DEFAULT_BRANCH")
        links = [("CI job", env["CI_JOB_URL"])] if env.get("CI_JOB_URL") else []
        if env.get("CI_MERGE_REQUEST_PROJECT_URL") and env.get("CI_MERGE_REQUEST_IID"):
            links.append(
                (
                    "merge request",
                    f"{env['CI_MERGE_REQUEST_PROJECT_URL']}/-/merge_requests/{env['CI_MERGE_REQUEST_IID']}",
                )
            )
        return CiEnvironment(
            "gitlab",
            f"origin/{base}" if base else None,
            env.get("GITLAB_USER_LOGIN"),
            links,
            actor_email=env.get("GITLAB_USER_EMAIL") or None,
            project=env.get("CI_PROJECT_PATH"),
            run=env.get("CI_PIPELINE_ID"),
            attempt=env.get("CI_JOB_ID"),
        )
    if env.get("CI", "").lower() in ("true", "1"):
        return CiEnvironment("generic", env.get("KUMO_AUDIT_BASE"), env.get("KUMO_AUDIT_ACTOR"), [])
    return CiEnvironment()

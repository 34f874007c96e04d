"""No secret value reaches any output of any command, nor any object of the runbook branch.

Distinct secrets are planted in Lua (by key name, by value shape, by where they are used), in TOML
and in JSON data files; every command that shows a change or a policy runs on them, in every format,
and every object reachable from the runbook branch is read back with `git cat-file`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from test_runbook_support import git
from test_runbook_support import runbook_env as runbook_env  # the fixture

from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("runbook_env")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "acme-mta" / "policy"
FORMATS = ("text", "json", "sarif", "github", "junit", "codequality", "markdown")

SECRETS = {
    "toml-socks5": "Tq7socks5Pw0rdZ",
    "toml-smtp-auth": "Ka9smtpAuthPlain",
    "json-smtp-auth": "Jx4jsonPlainPass",
    "lua-local-name": "Lv2localNamedPw",
    "lua-auth-literal": "La8authCompared",
    "lua-pem-shape": "MIIEvQPemShapedKeyMaterial5",
    "lua-table-token": "Lt3vaultTokenXyz",
    "lua-auth-local": "Lc6authLocalConst",
    "toml-new-section": "Tn1wholeNewSection",
}


def plant(policy: Path) -> None:
    s = SECRETS
    with (policy / "sources.toml").open("a") as f:
        f.write(f'\n[source."mta1-proxy"]\nsocks5_proxy_password = "{s["toml-socks5"]}"\n')
        f.write(
            f'source_address = "192.0.2.99"\n\n[source."mta1-proxy-2"]\n'
            f'socks5_proxy_password = "{s["toml-new-section"]}"\n'
        )
    with (policy / "shaping.toml").open("a") as f:
        f.write(f'\n["relay.example.net"]\nsmtp_auth_plain_password = "{s["toml-smtp-auth"]}"\n')
    overrides = json.loads((policy / "shaping-overrides.json").read_text())
    overrides["web.de"]["smtp_auth_plain_password"] = s["json-smtp-auth"]
    (policy / "shaping-overrides.json").write_text(json.dumps(overrides, indent=2))
    with (policy / "init.lua").open("a") as f:
        f.write(f"\nlocal smtp_auth_plain_password = '{s['lua-local-name']}'\n")
        f.write(
            "local pem = '-----BEGIN PRIVATE KEY-----"
            + s["lua-pem-shape"]
            + "-----END PRIVATE KEY-----'\n"
        )
        f.write(f"local vault = {{ vault_token = '{s['lua-table-token']}' }}\n")
        f.write(f"local expected = '{s['lua-auth-local']}'\n")
        f.write(
            "kumo.on('smtp_server_auth_plain', function(authz, authc, password, meta) "
            f"return password == '{s['lua-auth-literal']}' or password == expected end)\n"
        )


def runbook_objects(repo: Path) -> dict[str, bytes]:
    """Every object reachable from the runbook branch (commits, trees, blobs), as `git cat-file -p`
    prints it, by its `rev-list --objects` line."""
    out = {}
    for line in git(repo, "rev-list", "--objects", "kumo-runbook").split("\n"):
        out[line] = subprocess.run(
            ["git", "-C", str(repo), "cat-file", "-p", line.split(" ", 1)[0]],
            capture_output=True,
            check=True,
        ).stdout
    return out


def leaks(text: str | bytes) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    return [name for name, value in SECRETS.items() if value.encode() in data]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "policy"
    shutil.copytree(EXAMPLE, repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Jane Doe")
    git(repo, "config", "user.email", "jane@example.com")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Initial policy")
    git(repo, "checkout", "-q", "-b", "proxy")
    plant(repo)
    return repo


def test_planted_secrets_never_reach_an_output_or_the_runbook(repo: Path, tmp_path: Path) -> None:
    outputs: dict[str, str] = {}
    git(repo, "add", "-A")
    hook = run_cli("hook", "pre-commit", cwd=repo)
    outputs["hook stdout"], outputs["hook stderr"] = hook.stdout, hook.stderr
    assert hook.returncode in (0, 1), hook.stderr
    git(repo, "commit", "-q", "-m", "Proxy credentials")
    for fmt in FORMATS:
        for name, args in (
            ("check", ["check", "--format", fmt]),
            ("diff", ["diff", "main", "HEAD", "--format", fmt]),
            ("ci", ["ci", "--base", "main", "--format", fmt]),
        ):
            proc = run_cli(*args, cwd=repo)
            assert proc.returncode in (0, 1), (name, fmt, proc.stderr)
            outputs[f"{name} {fmt}"] = proc.stdout + proc.stderr
    recorded = run_cli("ci", "--base", "main", "--record", "--format", "json", cwd=repo)
    assert recorded.returncode in (0, 1), recorded.stderr
    outputs["ci --record"] = recorded.stdout + recorded.stderr
    for domain in ("relay.example.net", "web.de"):
        proc = run_cli("shaping", domain, cwd=repo)
        assert proc.returncode == 0, proc.stderr
        outputs[f"shaping {domain}"] = proc.stdout
    history = run_cli("runbook", "history", "--format", "json", cwd=repo)
    assert history.returncode == 0, history.stderr
    outputs["history"] = history.stdout
    for entry in json.loads(history.stdout):
        shown = run_cli("runbook", "show", entry["id"], cwd=repo)
        outputs[f"show {entry['id']}"] = shown.stdout + shown.stderr
    report_dir = tmp_path / "report"
    report = run_cli("runbook", "report", "-o", str(report_dir), cwd=repo)
    assert report.returncode == 0, report.stderr
    for page in report_dir.rglob("*"):
        if page.is_file():
            outputs[f"report {page.name}"] = page.read_text("utf-8", "replace")

    leaked = {name: leaks(text) for name, text in outputs.items() if leaks(text)}
    assert not leaked, json.dumps(leaked, indent=1)

    objects = runbook_objects(repo)
    assert len(objects) > 3
    for line, body in objects.items():
        assert leaks(body) == [], line

    # A redacted change still says what changed: the key, where, and a digest to compare by.
    data = json.loads(outputs["ci json"])
    values = {(v["path"], v["key"]): v for v in data["change"]["values"]}
    socks = next(v for (p, k), v in values.items() if p == "sources.toml" and "mta1-proxy" in k)
    assert socks["before"] is None
    assert "redacted" in json.dumps(socks["after"])
    web = values[("shaping-overrides.json", '["web.de"].smtp_auth_plain_password')]
    assert web["before"] is None and web["after"].startswith("<redacted ")


def test_same_secret_same_digest_different_secret_different_digest(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Proxy credentials")
    first = json.loads(run_cli("ci", "--base", "main", "--format", "json", cwd=repo).stdout)
    marker = {(v["path"], v["key"]): v["after"] for v in first["change"]["values"]}
    web = marker[("shaping-overrides.json", '["web.de"].smtp_auth_plain_password')]
    again = json.loads(run_cli("ci", "--base", "main", "--format", "json", cwd=repo).stdout)
    assert {(v["path"], v["key"]): v["after"] for v in again["change"]["values"]}[
        ("shaping-overrides.json", '["web.de"].smtp_auth_plain_password')
    ] == web
    overrides = json.loads((repo / "shaping-overrides.json").read_text())
    overrides["web.de"]["smtp_auth_plain_password"] = "another-Pw-value"
    (repo / "shaping-overrides.json").write_text(json.dumps(overrides, indent=2))
    git(repo, "commit", "-q", "-am", "Rotate")
    third = json.loads(run_cli("diff", "HEAD~1", "HEAD", "--format", "json", cwd=repo).stdout)
    change = next(v for v in third["change"]["values"] if v["path"] == "shaping-overrides.json")
    assert change["before"] == web
    assert change["after"].startswith("<redacted ") and change["after"] != web
    assert "another-Pw-value" not in json.dumps(third)


TEXT_SECRETS = {
    "commit-aws-key": "AKIAQ7TESTKEYID12345",
    "commit-assignment": "Cm5commitPassword",
    "why-token": "ghp_" + "Wy7" * 12,
    "why-quoted": "Qw 9 quoted pass",
    "summary-vault": "hvs.SummaryVaultToken0123456",
    "link-url-password": "Lk3urlPassword",
    "rollback-password": "Rb8rollbackPw",
}


def text_leaks(data: str | bytes) -> list[str]:
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "replace")
    return [name for name, value in TEXT_SECRETS.items() if value.encode() in raw]


def runbook_objects_leak(repo: Path) -> list[str]:
    return [name for body in runbook_objects(repo).values() for name in text_leaks(body)]


def test_secrets_in_free_text_never_reach_the_runbook_or_the_ci_listing(repo: Path) -> None:
    """A reason, a summary, a link, a rollback command or a commit message is free text: a secret
    pasted there is recorded as a marker, the rest of the text (and its tickets) as written."""
    s = TEXT_SECRETS
    git(repo, "add", "-A")
    git(
        repo,
        "commit",
        "-q",
        "-m",
        f"Proxy credentials OPS-9 with key {s['commit-aws-key']}",
        "-m",
        f"temporary: db_password={s['commit-assignment']}.",
    )
    outputs: dict[str, str] = {}
    each = run_cli("ci", "--base", "main", "--each-commit", "--record", cwd=repo)
    assert each.returncode in (0, 1), each.stderr
    outputs["ci --each-commit"] = each.stdout + each.stderr
    assert "Proxy credentials OPS-9 with key <redacted " in each.stderr
    manual = run_cli(
        "runbook", "record", "--decision", "waived",
        "--why", f"used token {s['why-token']} for now; password: \"{s['why-quoted']}\" (OPS-10)",
        "--summary", f"waived until vault_token {s['summary-vault']} is rotated",
        "--link", f"https://ops:{s['link-url-password']}@wiki.example.net/runbook",
        "--rollback-command", f"kumo-admin restore --password={s['rollback-password']}",
        "--base", "main", "--head", "HEAD",
        cwd=repo,
    )  # fmt: skip
    assert manual.returncode == 0, manual.stderr
    assert "secret value(s) in the entry's text" in manual.stderr
    outputs["record"] = manual.stdout + manual.stderr
    for fmt in ("text", "json"):
        outputs[f"history {fmt}"] = run_cli("runbook", "history", "--format", fmt, cwd=repo).stdout
    entries = json.loads(outputs["history json"])
    for entry in entries:
        outputs[entry["id"]] = run_cli("runbook", "show", entry["id"], cwd=repo).stdout
    leaked = {name: text_leaks(text) for name, text in outputs.items() if text_leaks(text)}
    assert not leaked, json.dumps(leaked, indent=1)
    assert runbook_objects_leak(repo) == []
    # What is left says what happened: the text around each marker, and the tickets.
    waived = next(e for e in entries if e["decision"] == "waived")
    shown = outputs[waived["id"]]
    assert "used token <redacted " in shown and "(OPS-10)" in shown
    assert "https://ops:<redacted " in shown and "--password=<redacted " in shown
    assert {"OPS-9", "OPS-10"} <= set(waived["why"]["tickets"])


def test_secrets_shown_by_changed_code_or_values_are_redacted_in_the_change(repo: Path) -> None:
    """A statement or a data value quoted by the change set may show a secret that no key name
    marks: a token, or `name=value` inside a string. It reaches no output and no entry."""
    planted = {"lua": "Zq8inStringPw", "token": "AKIAQ7TESTKEYID99999", "toml": "Zq6tomlValuePw"}
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Proxy credentials")
    with (repo / "init.lua").open("a") as f:
        f.write(f"local note = 'smtp_auth_plain_password={planted['lua']}'\n")
        f.write(f"local id = '{planted['token']}'\n")
    with (repo / "shaping.toml").open("a") as f:
        f.write(f'\n["doc.example.net"]\nsmtp_auth_plain_username = "password={planted["toml"]}"\n')
    git(repo, "commit", "-q", "-am", "Notes")
    outputs = {}
    for fmt in ("text", "json", "markdown"):
        proc = run_cli("ci", "--base", "main", "--format", fmt, cwd=repo)
        assert proc.returncode in (0, 1), proc.stderr
        outputs[fmt] = proc.stdout + proc.stderr
    recorded = run_cli("ci", "--base", "main", "--record", cwd=repo)
    assert recorded.returncode in (0, 1), recorded.stderr
    assert "statement `local note = 'smtp_auth_plain_password=<redacted " in outputs["json"]
    assert "smtp_auth_plain_username" in outputs["json"]  # the data value change is shown
    for name, text in outputs.items():
        assert not [k for k, v in planted.items() if v in text], name
    for line, body in runbook_objects(repo).items():
        assert not [k for k, v in planted.items() if v.encode() in body], line

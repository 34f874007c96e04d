"""Secrets in free text (a reason, a summary, a commit message): each shape at its edges, and the
text around them that must stay as written."""

from __future__ import annotations

import pytest

from auditor.core.secrets import Redactor, secrets_in_text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("key AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),  # AKIA + 16
        ("ASIAIOSFODNN7EXAMPLE", "ASIAIOSFODNN7EXAMPLE"),
        ("ghp_" + "a" * 36, "ghp_" + "a" * 36),
        ("github_pat_" + "B" * 22, "github_pat_" + "B" * 22),
        ("xoxb-1234567890", "xoxb-1234567890"),
        ("AIza" + "c" * 35, "AIza" + "c" * 35),
        ("sk_live_" + "d" * 16, "sk_live_" + "d" * 16),
        ("hvs." + "e" * 20, "hvs." + "e" * 20),
        (
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fw",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fw",
        ),
        ("smtp://relay:Pw0rd!x@mx.example.net:587", "Pw0rd!x"),
        ("password=hunter22", "hunter22"),
        ("db_password = hunter22.", "hunter22"),  # sentence punctuation is not part of it
        ("apiKey: 'two words'", "two words"),
        ('secret: "q w e r"', "q w e r"),
        ("reason: password=Tr0ub4dor&3", "Tr0ub4dor&3"),  # a name inside another's value
        ("vault_token:abcd", "abcd"),  # four characters: the shortest value taken
    ],
)
def test_secret_found(text: str, secret: str) -> None:
    assert secrets_in_text(text) == {secret}


@pytest.mark.parametrize(
    "text",
    [
        "AKIAIOSFODNN7EXAMPL",  # AKIA + 15
        "AKIAIOSFODNN7EXAMPLEX",  # AKIA + 17: not a key id, part of a longer word
        "ghp_" + "a" * 35,
        "eyJhbGciOi.eyJzdWIiOiIx.SflKxwRJSM",  # a header of seven characters after eyJ
        "xoxb-123456789",  # 9 after the dash
        "hvs." + "e" * 19,
        "https://ops@wiki.example.net/x",  # a user, no password
        "password: abc",  # three characters: a word, not a value
        "password_file = /etc/kumo/pw",  # names a reference
        "smtp_auth_plain_password = '/etc/kumo/smtp-pw'",  # a path
        "password changed per OPS-12",  # no assignment
        "Approved-by: Ann <ann@example.net>",
        "ticket: OPS-77",
        "",
    ],
)
def test_no_secret(text: str) -> None:
    assert secrets_in_text(text) == set()


def test_private_key_block_is_one_secret_up_to_its_end_or_the_text_end() -> None:
    block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"
    assert secrets_in_text(f"before\n{block}\nafter") == {block}
    cut = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNz"
    assert secrets_in_text(f"pasted: {cut}") == {cut}


def test_redacted_text_keeps_everything_else() -> None:
    text = "rotated: password=Tr0ub4dor&3, see OPS-7 and https://a:Zz9pw@h/x"
    found = secrets_in_text(text)
    assert found == {"Tr0ub4dor&3", "Zz9pw"}
    redactor = Redactor(b"salt")
    clean = redactor.text(text, found)
    assert "Tr0ub4dor&3" not in clean and "Zz9pw" not in clean
    assert (
        clean.startswith("rotated: password=<redacted ") and ", see OPS-7 and https://a:<" in clean
    )
    assert secrets_in_text(clean) == set()  # a marker is never taken for a secret again
    assert secrets_in_text("token: '<redacted 0a1b2c3d>'") == set()

"""The JWT secret's strength: what a person types to fill the setting is refused, what a
random generator makes passes."""

from __future__ import annotations

import secrets
import string

import pytest

from sessionhub.auth.secret_strength import MIN_BITS, estimated_bits, weakness


@pytest.mark.parametrize(
    "secret",
    [
        " " * 32,
        "a" * 40,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
        "ab" * 20,
        "xyz" * 12,
        "changeme" * 4,
        "CHANGEME-changeme-ChangeMe-change_me",
        "secret" * 6,
        "0123456789abcdef" * 2,
        "abcdefghijklmnopqrstuvwxyz012345",
        "zyxwvutsrqponmlkjihgfedcba987654",
        "Password1Password1Password1Pass",
        "qwertyuiopasdfghjklzxcvbnm123456",
        "11111111222222223333333344444444",
    ],
)
def test_placeholders_repeats_runs_and_few_characters_are_refused(secret: str) -> None:
    assert estimated_bits(secret) < MIN_BITS
    problem = weakness(secret)
    assert problem is not None and "too easy to guess" in problem
    assert "secrets.token_urlsafe(32)" in problem


def test_the_refusal_names_the_placeholder_it_found() -> None:
    problem = weakness("changeme" * 4)
    assert problem is not None
    assert "'changeme'" in problem and "7 distinct characters" in problem


RANDOM = {
    "32 url-safe": lambda: secrets.token_urlsafe(24),
    "token_urlsafe(32)": lambda: secrets.token_urlsafe(32),
    "32 alphanumeric": lambda: "".join(
        secrets.choice(string.ascii_letters + string.digits) for _ in range(32)
    ),
    "64 hex": lambda: secrets.token_hex(32),
}


@pytest.mark.parametrize("make", list(RANDOM.values()), ids=list(RANDOM))
def test_random_secrets_pass(make) -> None:
    for _ in range(2000):
        secret = make()
        assert weakness(secret) is None, (secret, estimated_bits(secret))


def test_a_random_secret_keeps_its_strength_beside_a_placeholder() -> None:
    random_part = secrets.token_urlsafe(32)
    assert weakness(f"secret-{random_part}") is None
    assert estimated_bits("changeme-changeme") < estimated_bits(random_part)

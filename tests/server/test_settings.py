from __future__ import annotations

import secrets
import string
from pathlib import Path

import pytest

from sessionhub.domain.models import TurnRole
from sessionhub.server.chat_apps import load_chat_apps
from sessionhub.server.errors import SettingsError
from sessionhub.server.settings import load_settings, token_config


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.database_url == "sqlite:///./sessionhub.db"
    assert settings.sqlite_path == "./sessionhub.db"
    assert settings.title_worker_process
    assert [a.id for a in load_chat_apps(settings.chat_apps_file)] == ["support", "knowledge"]


def test_shipped_chat_apps() -> None:
    apps = {a.id: a.settings for a in load_chat_apps(load_settings().chat_apps_file)}
    assert apps["support"].retention_days == 90 and not apps["support"].allow_sharing
    assert apps["knowledge"].retention_days == 730 and apps["knowledge"].allow_sharing


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SESSIONHUB_DATABASE_URL", "postgres://db/x"),
        ("SESSIONHUB_DATABASE_URL", "sqlite:///"),
        ("SESSIONHUB_PORT", "eighty"),
        ("SESSIONHUB_PORT", "70000"),
        ("SESSIONHUB_JWT_SECRET", "too-short"),
        ("SESSIONHUB_JWT_PUBLIC_KEY_FILE", "/no/such/key.pem"),
        ("SESSIONHUB_CHAT_APPS_FILE", "/no/such/apps.toml"),
        ("SESSIONHUB_ENVIRONMENT", "staging"),
        ("SESSIONHUB_SQLITE_READERS", "0"),
        ("SESSIONHUB_EXPORT_WORKERS", "0"),
        ("SESSIONHUB_EXPORT_QUEUE_SIZE", "-1"),
        ("SESSIONHUB_EXPORT_TIME_BUDGET_SECONDS", "0"),
        ("SESSIONHUB_EXPORT_MAX_TURNS", "many"),
        ("SESSIONHUB_EXPORT_MAX_CHARS", "0"),
        ("SESSIONHUB_EXPORT_MAX_PDF_CHARS", "0"),
        ("SESSIONHUB_EXPORT_MAX_BYTES", "100"),
        ("SESSIONHUB_LINK_OPEN_RATE", "ten a minute"),
        ("SESSIONHUB_LINK_OPEN_RATE", "0/minute"),
        ("SESSIONHUB_LINK_OPEN_RATE", "10/minute;0/hour"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_production_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONHUB_ENVIRONMENT", "production")
    with pytest.raises(SettingsError, match="SESSIONHUB_JWT_SECRET"):
        load_settings()


def test_development_secret_is_generated_once_and_private(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret_file = tmp_path / "state" / "secret"
    monkeypatch.setenv("SESSIONHUB_DEV_SECRET_FILE", str(secret_file))
    first = token_config(load_settings()).verify_key
    second = token_config(load_settings()).verify_key
    assert first == second and len(first) >= 32
    assert secret_file.stat().st_mode & 0o077 == 0


_APP = '[[chat_apps]]\nid = "a"\nname = "x"\n'


def test_templates_are_read_in_order(tmp_path: Path) -> None:
    path = tmp_path / "apps.toml"
    path.write_text(
        _APP
        + """
[[chat_apps.templates]]
id = "triage"
name = "Triage"
description = "Sort a ticket."

[chat_apps.templates.agent_context]
system_prompt = "Be brief."
variables = { team = "ops", depth = 2 }

[[chat_apps.templates.starter_turns]]
role = "SYSTEM"
content = "First."

[[chat_apps.templates.starter_turns]]
role = "ASSISTANT"
content = "Second."

[[chat_apps.templates]]
id = "bare"
name = "Bare"
"""
    )
    (app,) = load_chat_apps(path)
    triage, bare = app.templates
    assert (triage.id, triage.name, triage.description) == ("triage", "Triage", "Sort a ticket.")
    assert triage.system_prompt == "Be brief."
    assert triage.variables == {"team": "ops", "depth": 2}
    assert [(t.role, t.content) for t in triage.starter_turns] == [
        (TurnRole.SYSTEM, "First."),
        (TurnRole.ASSISTANT, "Second."),
    ]
    assert app.template("bare") == bare and app.template("nope") is None
    assert bare.system_prompt is None and bare.variables is None and bare.starter_turns == ()


def test_shipped_chat_apps_have_a_template_each() -> None:
    for app in load_chat_apps(load_settings().chat_apps_file):
        assert app.templates, app.id


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("chat_apps = []", "chat_apps"),
        ('[[chat_apps]]\nid = "Bad Id"\nname = "x"', "id"),
        (
            '[[chat_apps]]\nid = "a"\nname = "x"\n[chat_apps.settings]\nretention_days = 0',
            "retention_days",
        ),
        (
            '[[chat_apps]]\nid = "a"\nname = "x"\n[chat_apps.settings]\nallow_shareing = true',
            "allow_shareing",
        ),
        ('[[chat_apps]]\nid = "a"\nname = "x"\n[[chat_apps]]\nid = "a"\nname = "y"', "repeats"),
        ("not = [toml", "cannot read"),
        (f'{_APP}[[chat_apps.templates]]\nid = "Bad Id"\nname = "t"', "templates.0.id"),
        (f'{_APP}[[chat_apps.templates]]\nid = "t"\nname = ""', "templates.0.name"),
        (
            f'{_APP}[[chat_apps.templates]]\nid = "t"\nname = "t"\n'
            '[[chat_apps.templates.starter_turns]]\nrole = "TOOL"\ncontent = "x"',
            "starter_turns.0.role",
        ),
        (
            f'{_APP}[[chat_apps.templates]]\nid = "t"\nname = "t"\n'
            "[chat_apps.templates.agent_context]\nprompt = 'x'",
            "agent_context.prompt",
        ),
        (
            f'{_APP}[[chat_apps.templates]]\nid = "t"\nname = "t"\n'
            f'[[chat_apps.templates]]\nid = "t"\nname = "u"',
            "distinct",
        ),
    ],
)
def test_bad_chat_apps_files(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "apps.toml"
    path.write_text(content)
    with pytest.raises(SettingsError, match=problem):
        load_chat_apps(path)


@pytest.mark.parametrize(
    ("url", "database"),
    [
        ("mongodb://mongo:27017/chats?replicaSet=rs0", "chats"),
        ("mongodb://a:1,b:2/?replicaSet=rs0", "sessionhub"),
        ("mongodb://mongo", "sessionhub"),
        ("mongodb+srv://user:pw@cluster0.example.net/prod", "prod"),
    ],
)
def test_mongodb_urls_choose_the_mongo_store(
    monkeypatch: pytest.MonkeyPatch, url: str, database: str
) -> None:
    monkeypatch.setenv("SESSIONHUB_DATABASE_URL", url)
    settings = load_settings()
    assert settings.mongo and settings.mongo_database_name == database
    assert "pw" not in settings.database_url_for_logs


def test_a_mongodb_url_without_a_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONHUB_DATABASE_URL", "mongodb:///db")
    with pytest.raises(SettingsError, match="SESSIONHUB_DATABASE_URL"):
        load_settings()


async def test_a_mongodb_url_builds_the_mongo_store(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionhub.server.app import build_store
    from sessionhub.storage.mongo import MongoStore

    monkeypatch.setenv("SESSIONHUB_DATABASE_URL", "mongodb://127.0.0.1:1/chats")
    store = build_store(load_settings())
    try:
        assert isinstance(store, MongoStore)
        assert store._connection.database.name == "chats"
    finally:
        await store.close()


@pytest.mark.parametrize(
    "secret",
    [" " * 32, "changeme" * 4, "a" * 31 + "b", "0123456789abcdef" * 2],
    ids=["32 spaces", "changeme x4", "a x31 and b", "a sequence twice"],
)
def test_production_refuses_a_guessable_jwt_secret(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("SESSIONHUB_ENVIRONMENT", "production")
    monkeypatch.setenv("SESSIONHUB_JWT_SECRET", secret)
    with pytest.raises(SettingsError, match=r"SESSIONHUB_JWT_SECRET: .*too easy to guess"):
        load_settings()


@pytest.mark.parametrize(
    "secret",
    [
        secrets.token_urlsafe(32),
        secrets.token_urlsafe(24),  # 32 url-safe characters
        "".join(secrets.choice(string.ascii_letters + string.digits + "-_") for _ in range(32)),
    ],
    ids=["token_urlsafe(32)", "token_urlsafe(24)", "32 url-safe characters"],
)
def test_production_takes_a_random_jwt_secret(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("SESSIONHUB_ENVIRONMENT", "production")
    monkeypatch.setenv("SESSIONHUB_JWT_SECRET", secret)
    settings = load_settings()
    assert settings.jwt_secret_weakness is None
    assert token_config(settings).verify_key == secret


def test_development_takes_a_guessable_jwt_secret_and_says_so() -> None:
    # create_app logs the problem at start (tests/server/test_end_to_end.py reads it).
    settings = load_settings(jwt_secret=" " * 32)
    assert settings.jwt_secret_weakness is not None
    assert token_config(settings).verify_key == " " * 32

"""A deployment may leave out the optional parts (the `mongo`, `export` and `titles`
extras). Here a real server process runs with those libraries unimportable: it still
serves, makes Markdown and JSON exports and says plainly that it cannot make PDF or DOCX,
titles sessions with their opening words, and refuses a MongoDB URL at start, naming the
extra to install."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.support.servers import environment, free_port

OPTIONAL = ("fpdf", "docx", "yake", "motor", "pymongo")

# Runs the CLI with the optional libraries refused by the import system, as in an
# installation that never had them.
WITHOUT_EXTRAS = f"""
import sys
from importlib.abc import MetaPathFinder

class Absent(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Absent())
from sessionhub.server.cli import main
sys.argv = ["sessionhub", *sys.argv[1:]]
main()
"""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", WITHOUT_EXTRAS, *args]


@pytest.fixture
def server(tmp_path: Path):
    port = free_port()
    env = environment(tmp_path)
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        _cli("serve", "--host", "127.0.0.1", "--port", str(port)),
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail((tmp_path / "server.log").read_text())
    token = subprocess.run(
        _cli("token", "--user", "alice", "--entity", "acme"),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    yield base, token
    process.terminate()
    process.wait(timeout=30)
    log.close()


def _post(base: str, token: str, query: str) -> dict:
    response = httpx.post(
        f"{base}/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    return response.json()


def test_a_server_without_the_optional_parts_serves_what_it_can(server) -> None:
    base, token = server
    sent = _post(
        base,
        token,
        'mutation { sendMessage(input: {chatAppId: "support", content: '
        '"My printer is jammed again. It shows error E-42"}) { session { id } } }',
    )
    session_id = sent["data"]["sendMessage"]["session"]["id"]

    refused = _post(
        base,
        token,
        f'mutation {{ exportSessions(ids: ["{session_id}"], format: PDF) {{ fileName }} }}',
    )
    (error,) = refused["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "cannot make PDF documents" in error["message"]
    assert "MARKDOWN, JSON" in error["message"]

    made = _post(
        base,
        token,
        f'mutation {{ exportSessions(ids: ["{session_id}"], format: MARKDOWN) {{ fileName }} }}',
    )
    assert made["data"]["exportSessions"]["fileName"].endswith(".md")

    # The first title is made once the assistant has answered.
    answered = _post(
        base,
        token,
        f'mutation {{ appendTurn(input: {{sessionId: "{session_id}", role: ASSISTANT, '
        'content: "Open the rear tray and remove the jammed sheet."}) { seq } }',
    )
    assert answered["data"]["appendTurn"]["seq"] == 2
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = _post(base, token, f'{{ session(id: "{session_id}") {{ title titleSource }} }}')
        if got["data"]["session"]["titleSource"] == "AUTO":
            break
        time.sleep(0.2)
    assert got["data"]["session"] == {
        "title": "My printer is jammed again. It shows error E-42",
        "titleSource": "AUTO",
    }


def test_a_mongodb_url_without_the_driver_is_refused_at_start(tmp_path: Path) -> None:
    env = environment(tmp_path, SESSIONHUB_DATABASE_URL="mongodb://127.0.0.1:1/sessionhub")
    done = subprocess.run(
        _cli("serve", "--host", "127.0.0.1", "--port", str(free_port())),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output, output
    assert "install the `mongo` extra" in output, output

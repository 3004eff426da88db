"""``make run`` as a newcomer runs it, on ports of its own: the README's first command.

The Makefile's two steps (``manage.py migrate``, then ``scripts/run_embedded.py``) with
``DEBUG=1``, nothing of the test run's settings (no PostgreSQL, no Redis, no
``BATON_TESTING``), a data directory of the test's own, and ``BATON_PORT`` and
``BATON_FAKE_PORT`` moved: a request for the demo model reaches the demo upstream on the
port the setting names (not the default 8001, where nothing listens here), and Ctrl-C stops
every process ``make run`` started.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import openai

from scripts.services import free_port
from tests.ops.production import manage
from tests.polling import until

ROOT = Path(__file__).resolve().parents[2]

# A team, its API key and nothing else, as a newcomer's sign-up leaves it (the demo
# credential and model come with every new team).
NEWCOMER = """
from accounts import actions, tokens
from accounts.models import ApiKey, User
owner = User.objects.create_user("newcomer@example.com", "a sturdy passphrase 41")
team = actions.create_team(owner, name="Newcomer")
issued = tokens.issue(ApiKey.PREFIX)
ApiKey.objects.create(team=team, name="first", lookup=issued.lookup, digest=issued.digest,
                      last4=issued.last4)
print("KEY", issued.token)
"""


def makefile_steps() -> list[list[str]]:
    """The ``run`` target's recipe lines, as argument lists."""
    text = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^run: .*\n((?:\t.*\n)+)", text, re.MULTILINE)
    assert recipe, "the Makefile has no run target"
    steps = []
    for line in recipe.group(1).splitlines():
        words = line.strip().split()
        assert words[0] == "DEBUG=1" and words[1] == "$(PY)", line
        steps.append(words[2:])
    return steps


def children_of(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(status.parent.name))
    return found


def test_make_run_serves_the_demo_on_the_ports_it_is_given(tmp_path: Path) -> None:
    migrate, run = makefile_steps()
    assert migrate[:2] == ["manage.py", "migrate"] and run == ["scripts/run_embedded.py"]
    port, fake_port = free_port(), free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("BATON_", "DATABASE_", "REDIS_", "CELERY_", "DJANGO_"))
    }
    env |= {
        "DEBUG": "1",
        "BATON_DATA_DIR": str(tmp_path),
        "BATON_PORT": str(port),
        "BATON_FAKE_PORT": str(fake_port),
    }
    migrated = manage(env, *migrate[1:])
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    made = manage(env, "shell", "-c", NEWCOMER)
    assert made.returncode == 0, made.stderr[-3000:]
    key = made.stdout.split("KEY ")[1].split()[0]

    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen(
        [sys.executable, *run], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    started: list[int] = []
    try:
        until(lambda: ready(port), "Baton's page on BATON_PORT", timeout=90)
        started = children_of(process.pid)
        assert len(started) == 3, started  # the fake upstream, Celery, uvicorn
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)
        completion = client.chat.completions.create(
            model="demo-chat", messages=[{"role": "user", "content": "Hello"}]
        )
        assert completion.choices[0].message.content
        # It went to the fake upstream on BATON_FAKE_PORT: that server logged it.
        seen = httpx.get(f"http://127.0.0.1:{fake_port}/_fake/requests", timeout=5).json()
        assert any(r["path"].endswith("/chat/completions") for r in seen), seen
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        finally:
            log.close()
    left = [pid for pid in started if Path(f"/proc/{pid}").exists() and not zombie(pid)]
    assert left == [], f"make run left processes behind: {left}"
    assert process.returncode == 0, (tmp_path / "run.log").read_text()[-3000:]


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False

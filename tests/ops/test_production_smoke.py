"""Baton built and run exactly as deploy/ runs it, then used the way a newcomer uses it.

Every other test runs with the test settings (plain static storage, finders, fixed secrets);
none of them would notice that the image cannot be built or that a production server answers
every page with 500. This module takes deploy/'s own steps, read from deploy/'s own files:

1. the Dockerfile's ``collectstatic`` step, with the Dockerfile's own environment;
2. the compose file's ``migrate`` service, on a database of its own;
3. ``manage.py check --deploy`` and ``makemigrations --check``;
4. the compose file's ``uvicorn`` command line, with the compose file's environment and
   ``deploy/baton.env.example`` filled in (tests/ops/production.py), behind a pretend TLS proxy
   as docs/deployment.md has it (``BEHIND_TLS_PROXY``: the client sends
   ``X-Forwarded-Proto: https`` and, like a browser on HTTPS, returns Secure cookies);

and then signs up, logs in, walks every team page and the API docs with their static files,
creates an API key and a personal access token in the pages, and calls /v1 with the OpenAI
SDK through the demo upstream (the test's fake upstream). Any 5xx fails, and so does an error
in the server's log.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
import secrets
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import openai
import orjson
import psycopg
import pytest
from django.conf import settings
from django.urls import reverse

from scripts.services import free_port
from tests.ops.production import (
    DEPLOY,
    ROOT,
    compose,
    container_env,
    image_python,
    interpolate,
    manage,
    production_env,
)
from tests.processes import BatonProcess
from tests.test_tenancy import team_scoped_patterns

pytestmark = pytest.mark.production

PASSWORD = "a production password 7f3c"


# --- deploy/'s steps, read from deploy/'s files --------------------------------------------


def dockerfile_collectstatic() -> str:
    """The shell command of the Dockerfile's ``RUN`` that runs collectstatic."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    runs = [line[4:] for line in text.splitlines() if line.startswith("RUN ")]
    steps = [step.strip() for run in runs for step in run.split("&&")]
    found = [step for step in steps if "manage.py collectstatic" in step]
    assert len(found) == 1, f"the Dockerfile should run collectstatic once, found {found}"
    return found[0]


def dockerfile_env() -> dict[str, str]:
    """The Dockerfile's ``ENV`` lines."""
    values: dict[str, str] = {}
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("ENV "):
            for item in shlex.split(line[4:]):
                name, _, value = item.partition("=")
                values[name] = value
    return values


def _compose_defaults(text: str) -> str:
    """Compose's ``${NAME:-default}`` substitution, with the defaults (nothing is set)."""
    text = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", text)
    assert "$" not in text.replace("$$", ""), (
        f"a compose variable without a default; teach the smoke test its value: {text}"
    )
    return text


def compose_uvicorn_command(port: int, python: str) -> list[str]:
    """The web service's uvicorn command line, listening on loopback ``port``, run by
    ``python``."""
    script = compose()["services"]["web"]["command"][-1]
    _, _, exec_part = script.partition("exec ")
    args = shlex.split(_compose_defaults(exec_part))
    assert args[:4] == ["python", "-m", "gateway.serve", "config.asgi:application"], args
    for option, value in (("--host", "127.0.0.1"), ("--port", str(port))):
        assert option in args, f"the compose file's uvicorn command has no {option}"
        args[args.index(option) + 1] = value
    return [python, *args[1:]]


def compose_migrate_args() -> list[str]:
    command = compose()["services"]["migrate"]["command"]
    assert command[:2] == ["python", "manage.py"], command
    return list(command[2:])


# --- a database and a Redis database of the smoke test's own -------------------------------


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the test server: the suite's own stays untouched."""
    db = settings.DATABASES["default"]
    assert db["ENGINE"] == "django.db.backends.postgresql", "run under scripts/services.py"
    name = f"baton_smoke_{uuid.uuid4().hex[:12]}"
    server = f"host={db['HOST']} port={db['PORT']} user={db['USER']} dbname=postgres"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """Database 13 of the test Redis: the production server's streams and counters never
    meet the suite's (which uses database 0 and flushes it)."""
    import redis as redis_lib

    parts = urlsplit(settings.REDIS_URL)
    url = urlunsplit(parts._replace(path="/13"))
    client = redis_lib.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


# --- the build, the migration, the server -----------------------------------------------------


@dataclass
class Deployment:
    env: dict[str, str]
    static_root: Path
    base_url: str
    python: str  # the image's: its runtime packages only (tests/ops/production.py)
    build: Any = None  # the collectstatic step's CompletedProcess
    migrate: Any = None


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str, fake_upstream: Any
) -> Deployment:
    root = tmp_path_factory.mktemp("production")
    (root / "image").mkdir()
    python = image_python(root / "image")
    static_root = root / "staticfiles"
    port = free_port()
    origin = f"https://127.0.0.1:{port}"
    data_dir = root / "data"
    data_dir.mkdir()
    (root / "metrics").mkdir()
    web_env = {
        name: interpolate(str(value))
        for name, value in compose()["services"]["web"]["environment"].items()
    }
    overrides = {
        **web_env,
        **dockerfile_env(),
        "BATON_DATA_DIR": str(data_dir),
        "STATIC_ROOT": str(static_root),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PROMETHEUS_MULTIPROC_DIR": str(root / "metrics"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "CSRF_TRUSTED_ORIGINS": origin,
        "SITE_URL": origin,
        # The demo provider is the test's fake upstream, on loopback.
        "BATON_FAKE_UPSTREAM_URL": fake_upstream.base_url,
        "BATON_ALLOW_LOOPBACK_UPSTREAMS": "true",
    }
    env = production_env(data_dir, python, **overrides)
    assert "BATON_TESTING" not in env and env["DEBUG"] == "false"
    # The image build: the Dockerfile's own command and environment (no database, no Redis,
    # no settings but the ones the command sets), with the image's paths moved here.
    build_env = {
        **container_env(python),
        **dockerfile_env(),
        "BATON_DATA_DIR": str(root / "build"),
        "STATIC_ROOT": str(static_root),
    }
    build = subprocess.run(
        ["sh", "-c", dockerfile_collectstatic()],
        cwd=ROOT,
        env=build_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    deployment = Deployment(
        env=env, static_root=static_root, base_url=f"http://127.0.0.1:{port}", python=python
    )
    deployment.build = build
    if build.returncode == 0:
        deployment.migrate = manage(env, *compose_migrate_args(), python=python)
    return deployment


@pytest.fixture(scope="module")
def server(deployment: Deployment) -> Iterator[BatonProcess]:
    assert deployment.build.returncode == 0, deployment.build.stderr[-3000:]
    assert deployment.migrate.returncode == 0, deployment.migrate.stderr[-3000:]
    port = urlsplit(deployment.base_url).port
    assert port is not None
    process = BatonProcess(
        port=port, command=compose_uvicorn_command(port, deployment.python), environ=deployment.env
    )
    try:
        process.wait_ready("/readyz", timeout=90)
        yield process
    finally:
        process.stop()


def assert_no_errors_logged(server: BatonProcess) -> None:
    """LOG_FORMAT=json (the compose file's): one object per line, with its level."""
    logs = server.logs()
    problems = []
    for line in logs.splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            record = {}
        if "Traceback" in line or (
            isinstance(record, dict) and record.get("level") in ("ERROR", "CRITICAL")
        ):
            problems.append(line)
    assert not problems, "the server logged errors:\n" + "\n".join(problems)[-5000:]


# --- a client that stands behind the TLS proxy ------------------------------------------------


class FormParser(HTMLParser):
    """The fields of every form on a page, with the values a browser would submit."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}})
        elif not self.forms:
            return
        fields = self.forms[-1]["fields"]
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind not in ("submit", "button", "image", "file"):
                fields[a["name"]] = a.get("value", "on" if kind == "checkbox" else "")
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            fields[a["name"]] = ""
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            fields[a["name"]] = None
        elif tag == "option" and self._select and (fields[self._select] is None or "selected" in a):
            fields[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea and self.forms:
            self.forms[-1]["fields"][self._textarea] += data


class Visitor:
    """A browser behind the deployment's TLS proxy. Every response is checked for 5xx."""

    def __init__(self, base_url: str) -> None:
        self.origin = "https://" + urlsplit(base_url).netloc
        self.secure_cookies: set[str] = set()
        self.http = httpx.Client(
            base_url=base_url,
            headers={"X-Forwarded-Proto": "https"},
            timeout=60,
            event_hooks={"response": [self._check]},
        )

    def _check(self, response: httpx.Response) -> None:
        # The browser talks HTTPS to the proxy, so it returns Secure cookies: note them and
        # unmark them (the client only sees the plain-HTTP hop behind the proxy).
        for cookie in self.http.cookies.jar:
            if cookie.secure:
                self.secure_cookies.add(cookie.name)
                cookie.secure = False
        request = response.request
        if response.status_code >= 500:
            response.read()
            raise AssertionError(
                f"{request.method} {request.url} answered {response.status_code}:\n"
                f"{response.text[:2000]}"
            )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def forms(self, path: str) -> list[dict[str, Any]]:
        page = self.get(path)
        assert page.status_code == 200, (path, page.status_code)
        parser = FormParser()
        parser.feed(page.text)
        return parser.forms

    def submit(
        self, path: str, values: dict[str, str], *, action: str | None = None
    ) -> httpx.Response:
        """Fill the page's form that has the fields in ``values`` (and posts to ``action``,
        when given) like a browser and post it."""
        forms = [
            f
            for f in self.forms(path)
            if "csrfmiddlewaretoken" in f["fields"]
            and set(values) <= set(f["fields"])
            and (action is None or f["action"] == action)
        ]
        assert len(forms) == 1, f"{path}: {len(forms)} forms with the fields {sorted(values)}"
        form = forms[0]
        fields = {k: v for k, v in form["fields"].items() if v is not None} | values
        return self.http.post(
            form["action"] or path,
            data=fields,
            headers={"Origin": self.origin, "Referer": self.origin + path},
        )

    def close(self) -> None:
        self.http.close()


@contextlib.contextmanager
def visitor(server: BatonProcess) -> Iterator[Visitor]:
    client = Visitor(server.base_url)
    try:
        yield client
    finally:
        client.close()


# The path only: the link is https (ACCOUNT_DEFAULT_HTTP_PROTOCOL) on the host mail was sent for.
CONFIRM_LINK = re.compile(r"https?://[^/\s]+(/accounts/confirm-email/[^/\s]+/)")

STATIC_REF = re.compile(r"""(?:href|src)=["'](/static/[^"'?#]+)""")


def assert_static_resolves(client: Visitor, html: str, checked: set[str]) -> int:
    """Every static file the page links exists under its hashed (manifest) name."""
    found = STATIC_REF.findall(html)
    assert found, "the page links no static file"
    for path in found:
        assert re.search(r"\.[0-9a-f]{12}\.\w+$", path), f"{path} is not a hashed name"
        if path not in checked:
            response = client.get(path)
            assert response.status_code == 200, f"{path} answered {response.status_code}"
            assert "immutable" in response.headers.get("cache-control", ""), path
            checked.add(path)
    return len(found)


def sign_up(client: Visitor, email: str) -> httpx.Response:
    return client.submit(
        "/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD}
    )


def team_id_of(client: Visitor) -> str:
    dashboard = client.get("/dashboard/")
    assert dashboard.status_code == 302, dashboard.status_code
    match = re.fullmatch(r"/t/([0-9a-f-]{36})/", dashboard.headers["location"])
    assert match, dashboard.headers["location"]
    return match.group(1)


# --- the tests --------------------------------------------------------------------------------


def test_the_image_build_collects_static_files(deployment: Deployment) -> None:
    """The Dockerfile's collectstatic step succeeds with the manifest storage."""
    build = deployment.build
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-4000:]
    manifest = deployment.static_root / "staticfiles.json"
    assert manifest.exists()
    text = manifest.read_text()
    for name in ("css/baton.css", "vendor/chart.umd.js", "vendor/htmx.min.js", "js/baton.js"):
        assert f'"{name}"' in text, name
    hashed = [p for p in (deployment.static_root / "vendor").iterdir() if p.suffix == ".js"]
    assert any(p.name.startswith("chart.umd.") and p.name != "chart.umd.js" for p in hashed)


def dockerignored(path: str) -> bool:
    """Whether ``.dockerignore`` keeps ``path`` out of the build context (Docker's rules for
    the plain patterns the file uses: a name, a directory, or a glob)."""
    ignore = ROOT / ".dockerignore"
    if not ignore.exists():
        return False
    for line in ignore.read_text().splitlines():
        pattern = line.strip().rstrip("/")
        if not pattern or pattern.startswith("#"):
            continue
        if path == pattern or path.startswith(pattern + "/") or fnmatch.fnmatch(path, pattern):
            return True
    return False


@pytest.mark.parametrize(
    "path",
    [
        "deploy/baton.env",  # the production secrets, next to the compose file
        "deploy/.env",  # POSTGRES_PASSWORD
        "var/master_keys",  # the embedded mode's generated secrets and database
        "var/baton.sqlite3",
        ".venv/bin/python",
        ".git/config",
        "staticfiles/staticfiles.json",
        "tests/agents/node_modules/.bin/claude",  # the agent CLIs for the tests, 660 MB
        "tests/wire/tokens/files/o200k_base.tiktoken.gz",  # real tokenizers for the tests, 7 MB
    ],
)
def test_the_image_build_leaves_local_secrets_and_state_out(path: str) -> None:
    """The Dockerfile copies the whole checkout (``COPY . .``) into the image."""
    assert dockerignored(path), f"{path} would be copied into the image"
    assert not dockerignored("config/settings.py") and not dockerignored("deploy/Dockerfile")


def test_every_vendored_file_references_only_files_that_exist() -> None:
    """A source map comment naming a file that is not in the repository breaks the manifest
    storage at build time (and sends browsers' developer tools after a 404)."""
    checked = 0
    for path in sorted((ROOT / "static").rglob("*")):
        if path.suffix not in (".js", ".css"):
            continue
        checked += 1
        for reference in re.findall(r"sourceMappingURL=(\S+?)(?:\s|\*/|$)", path.read_text()):
            assert (path.parent / reference).exists(), f"{path} points at missing {reference}"
    assert checked >= 4


IMPORT_EVERYTHING = """
import importlib, os, pkgutil, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")  # as manage.py does
import django
django.setup()
names = []
for package in sys.argv[1:]:
    module = importlib.import_module(package)
    names.append(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        if ".tests" in info.name or ".migrations." in info.name:
            continue
        importlib.import_module(info.name)
        names.append(info.name)
print(len(names))
"""


def test_the_image_has_its_runtime_packages_only_and_they_run_baton(
    deployment: Deployment,
) -> None:
    """Every module of Baton imports in the image's Python (runtime packages only, production
    settings), where the test tools are absent: a runtime import that only the dev extras
    provide fails here rather than in production."""
    for dev_only in ("pytest", "ruff", "mypy"):
        probe = subprocess.run(
            [deployment.python, "-c", f"import {dev_only}"], capture_output=True, check=False
        )
        assert probe.returncode != 0, f"{dev_only} is in the image's packages"
    packages = ["accounts", "billing", "config", "console", "gateway", "relay", "wire"]
    result = subprocess.run(
        [deployment.python, "-c", IMPORT_EVERYTHING, *packages],
        cwd=ROOT,
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert int(result.stdout.split()[-1]) > 100


def test_migrations_apply_to_an_empty_database(deployment: Deployment) -> None:
    assert deployment.migrate is not None, "the build failed first"
    assert deployment.migrate.returncode == 0, deployment.migrate.stderr[-4000:]


def test_check_deploy_leaves_no_warning_unexplained(deployment: Deployment) -> None:
    result = manage(deployment.env, "check", "--deploy", python=deployment.python)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    codes = re.findall(r"\(([a-z_]+\.[A-Z]\d{3})\)", output)
    # None at all: what settings.py silences, it silences on purpose (each has its comment
    # there), and everything else is fixed.
    assert not codes, output
    # What settings.py silences, it silences on purpose (each has its comment there).
    assert "security." not in output, output


def test_models_and_migrations_agree(deployment: Deployment) -> None:
    result = manage(
        deployment.env, "makemigrations", "--check", "--dry-run", python=deployment.python
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pages_and_their_static_files(server: BatonProcess) -> None:
    checked: set[str] = set()
    with visitor(server) as client:
        landing = client.get("/")
        assert landing.status_code == 200
        # HTTPS (through the proxy) gets HSTS; the header is the deployment's promise.
        assert landing.headers["strict-transport-security"].startswith("max-age=31536000")
        assert_static_resolves(client, landing.text, checked)
        for path in ("/accounts/signup/", "/accounts/login/", "/accounts/password/reset/"):
            page = client.get(path)
            assert page.status_code == 200, path
            assert_static_resolves(client, page.text, checked)
        missing = client.get(f"/no-such-page-{secrets.token_hex(4)}/")
        assert missing.status_code == 404
        assert_static_resolves(client, missing.text, checked)
        for path in ("/healthz", "/readyz"):
            assert client.get(path).status_code == 200, path
    assert any(p.startswith("/static/css/baton.") for p in checked)
    assert_no_errors_logged(server)


def test_a_newcomer_signs_up_logs_in_and_calls_the_relay(server: BatonProcess) -> None:
    email = f"newcomer-{secrets.token_hex(4)}@example.com"
    checked: set[str] = set()
    with visitor(server) as client:
        signed_up = sign_up(client, email)
        assert signed_up.status_code == 302, signed_up.text[:3000]
        assert client.get(signed_up.headers["location"]).status_code in (200, 302)
        mail = [p.read_text() for p in Path(server.env["EMAIL_FILE_PATH"]).glob("*")]
        links = [link for text in mail if email in text for link in CONFIRM_LINK.findall(text)]
        assert len(links) == 1, f"no single confirmation link for {email}: {links}"
        # Confirming the address (it must be confirmed before the first sign-in).
        confirm_page = client.get(links[0])
        assert confirm_page.status_code == 200, confirm_page.status_code
        confirmed = client.submit(links[0], {}, action=links[0])
        assert confirmed.status_code == 302, confirmed.text[:3000]

    with visitor(server) as client:
        # Logging in (a fresh client): the session and CSRF cookies are Secure ones.
        logged_in = client.submit("/accounts/login/", {"login": email, "password": PASSWORD})
        assert logged_in.status_code == 302, logged_in.text[:3000]
        assert {"sessionid", "csrftoken"} <= client.secure_cookies
        team_id = team_id_of(client)

        # Every team page (and team API endpoint) there is, as its owner.
        pages = 0
        for name, params, _ in team_scoped_patterns():
            if params != ["team_id"] or name.endswith("leave"):
                continue
            url = reverse(name, kwargs={"team_id": team_id})
            response = client.get(url)
            assert response.status_code in (200, 405), f"{url} answered {response.status_code}"
            if response.headers.get("content-type", "").startswith("text/html"):
                assert_static_resolves(client, response.text, checked)
                pages += 1
        assert pages >= 10
        assert any("chart.umd" in p for p in checked), "the usage page's chart script"

        # An API key from the page, shown once and never cached.
        created = client.submit(f"/t/{team_id}/api-keys/new/", {"name": "smoke"})
        assert created.status_code == 200, created.text[:3000]
        assert created.headers["cache-control"] == "no-store"
        key = re.search(r"sk-baton-[A-Za-z0-9]{32}", created.text)
        assert key, "the new key is not on the page"

        # A personal access token from the page, for the management API.
        issued = client.submit("/settings/tokens/", {"name": "smoke"})
        assert issued.status_code == 200
        assert issued.headers["cache-control"] == "no-store"
        token = re.search(r"baton_pat_[A-Za-z0-9_-]+", issued.text)
        assert token, "the new token is not on the page"

        docs = client.get("/api/docs/")
        assert docs.status_code == 200
        assert_static_resolves(client, docs.text, checked)
        assert client.get("/api/schema/").status_code == 200

    teams = httpx.get(
        server.base_url + "/api/teams/",
        headers={"Authorization": f"Bearer {token.group(0)}", "X-Forwarded-Proto": "https"},
    )
    assert teams.status_code == 200 and team_id in teams.text

    sdk = openai.OpenAI(
        base_url=server.base_url + "/v1",
        api_key=key.group(0),
        max_retries=0,
        default_headers={"X-Forwarded-Proto": "https"},
    )
    models = [model.id for model in sdk.models.list()]
    assert "demo-chat" in models
    completion = sdk.chat.completions.create(
        model="demo-chat", messages=[{"role": "user", "content": "Hello"}]
    )
    assert completion.choices[0].message.content
    stream = sdk.chat.completions.create(
        model="demo-chat", messages=[{"role": "user", "content": "Hello"}], stream=True
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    # The pages of one object each: a key, a credential, a route, a membership (the ids from
    # the management API; a new team has the demo credential and route, and its own key).
    api = {"Authorization": f"Bearer {token.group(0)}", "X-Forwarded-Proto": "https"}

    def first_id(name: str) -> str:
        url = server.base_url + reverse(name, kwargs={"team_id": team_id})
        listed = httpx.get(url, headers=api)
        assert listed.status_code == 200, f"{url} answered {listed.status_code}"
        body = listed.json()
        rows = body["results"] if isinstance(body, dict) else body
        assert rows, f"{url} lists nothing"
        return str(rows[0]["id"])

    credential_id = first_id("credential-list")
    route = httpx.post(  # an alias of the demo model, through the API
        server.base_url + reverse("route-list", kwargs={"team_id": team_id}),
        headers=api,
        json={
            "alias": "smoke",
            "targets": [{"credential": credential_id, "upstream_model": "demo-chat"}],
        },
    )
    assert route.status_code == 201, route.text
    ids = {
        "key_id": first_id("api-key-list"),
        "credential_id": credential_id,
        "route_id": first_id("route-list"),
        "membership_id": first_id("member-list"),
    }
    with visitor(server) as client:
        logged_in = client.submit("/accounts/login/", {"login": email, "password": PASSWORD})
        assert logged_in.status_code == 302, logged_in.text[:3000]
        visited = []
        for name, params, _ in team_scoped_patterns():
            if len(params) != 2 or params[1] not in ids:
                continue
            url = reverse(name, kwargs={"team_id": team_id, params[1]: ids[params[1]]})
            response = client.get(url)
            if response.status_code == 302:  # refused with a message (the last owner leaving)
                assert response.headers["location"].startswith(f"/t/{team_id}/"), url
                continue
            assert response.status_code in (200, 405), f"{url} answered {response.status_code}"
            if response.headers.get("content-type", "").startswith("text/html"):
                if "<html" in response.text:  # a whole page, not an htmx fragment
                    assert_static_resolves(client, response.text, checked)
                visited.append(name)
        assert {"api_key_edit", "credential_detail", "route_edit", "key_limits"} <= set(visited)
    assert_no_errors_logged(server)

"""Run the real coding-agent CLIs (Claude Code, Codex CLI) headless and offline, for tests.

The CLIs are the npm packages pinned in ``tests/agents/package-lock.json`` and installed into
``tests/agents/node_modules`` by ``make agents`` (``.ci/run`` does it before ``make test``).
Nothing here downloads anything: when the CLIs are missing or stale the helpers raise
``AgentCLIMissing`` saying to run ``make agents``, so a test fails loudly instead of skipping.

Every run gets its own fresh directories under ``root`` (a test's ``tmp_path``): ``home``
(``HOME``), ``tmp`` (``TMPDIR``), ``work`` (the working directory the agent's tools see) and,
for Codex, ``codex`` (``CODEX_HOME`` with the generated ``config.toml``). The environment is
built from scratch, never inherited, apart from ``PATH``: no stray ``OPENAI_API_KEY``, proxy
or user configuration reaches the CLI. Everything that phones home is switched off; with the
settings below ``strace -f -e trace=connect,sendto`` shows no traffic but to the base URL
(no DNS lookups at all). A run is bounded by ``timeout``; on expiry the CLI's whole process
group is killed and ``AgentTimeout`` carries what it had printed.

Claude Code (``claude -p``) settings, all environment variables:

- ``ANTHROPIC_BASE_URL``: the root the client appends ``/v1/messages?beta=true`` to.
- ``ANTHROPIC_API_KEY`` (sent as ``x-api-key``) or ``ANTHROPIC_AUTH_TOKEN`` (``Authorization:
  Bearer``).
- ``ANTHROPIC_MODEL``, ``ANTHROPIC_DEFAULT_{SONNET,OPUS}_MODEL`` (= ``model``) and
  ``ANTHROPIC_DEFAULT_HAIKU_MODEL``, ``ANTHROPIC_SMALL_FAST_MODEL`` (= ``small_model``): every
  request names a model the test chose, whatever alias Claude Code picks internally.
- ``DISABLE_TELEMETRY`` (usage events), ``DISABLE_ERROR_REPORTING`` (Sentry),
  ``DISABLE_AUTOUPDATER`` (update check and self-update).
- ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC``: everything not needed to answer; without the
  variables above and this one, 2.1.197 looks up api.anthropic.com for its event log on every
  run and writes ``~/.claude/telemetry/1p_failed_events.*``.
- ``DISABLE_GROWTHBOOK`` (the feature-flag fetch) and
  ``CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL`` (the plugin marketplace clone from
  GitHub): found in the binary; tracing 2.1.197 with the other variables alone shows no
  traffic from them, they are set so that a later pin cannot start them unnoticed.
- ``CLAUDE_CODE_MAX_RETRIES=0``: an upstream error fails the run at once (one request)
  instead of retrying with back-off.

Claude Code's arguments: ``-p --output-format json --max-turns N --no-session-persistence``,
``--tools`` (``None`` = Claude Code's own 24 tools, as real users send them; ``""`` = none),
``--allowedTools`` for what may run without a prompt (e.g. ``Bash(echo *)``), then ``--``
and the prompt. Its JSON result: check ``is_error``, not ``subtype`` (an API error reports
``subtype: "success"`` with ``is_error: true``, ``api_error_status`` and exit code 1;
``--max-turns`` reached is ``subtype: "error_max_turns"``, exit code 1).

Codex CLI (``codex exec``) settings, in ``$CODEX_HOME/config.toml`` (see ``codex_config``):
the model provider ``baton`` with ``base_url`` (the relay's ``/v1``), ``env_key`` (the
environment variable holding the key, ``BATON_API_KEY``), ``wire_api = "responses"``,
``request_max_retries = 0`` and ``stream_max_retries = 0`` (one attempt: without them a 503
is tried five times), ``stream_idle_timeout_ms``; ``check_for_update_on_startup = false``;
``[analytics]`` and ``[feedback]`` off, ``[otel] exporter = "none"``; and two feature flags
found by tracing 0.171.0: ``plugins = false`` (else it runs ``git ls-remote
https://github.com/openai/plugins.git`` and falls back to api.github.com and chatgpt.com on
every start) and ``unbounded_connection_retries = false`` (else a refused connection, such
as a relay that is down, retries "waiting for network" forever). Arguments: ``exec
--strict-config --skip-git-repo-check --ephemeral --json -s read-only -o <file> -- prompt``
with stdin on /dev/null (``codex exec`` reads stdin as more prompt input). The read-only sandbox (the
bundled bubblewrap) works as root on this machine with no extra setting: ``exec_command``
runs, writes fail with "Read-only file system".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AGENTS_DIR = Path(__file__).resolve().parent
NODE_MODULES = AGENTS_DIR / "node_modules"
CLAUDE_PACKAGE = "@anthropic-ai/claude-code"
CODEX_PACKAGE = "@openai/codex"
INSTALL_HINT = "run `make agents` (npm ci in tests/agents) to install the pinned agent CLIs"

DEFAULT_TIMEOUT = 60.0
CODEX_KEY_ENV = "BATON_API_KEY"
CODEX_PROVIDER = "baton"
_STUB_MAX_BYTES = 1 << 20  # Claude Code's placeholder bin/claude.exe before its postinstall


class AgentCLIMissing(RuntimeError):
    """The pinned CLI is not installed (or not the pinned version): run ``make agents``."""


class AgentTimeout(RuntimeError):
    """The CLI did not finish within the timeout; its process group was killed."""

    def __init__(self, message: str, stdout: str, stderr: str) -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr


@dataclass(frozen=True)
class AgentRun:
    """One finished CLI run: what was run, how it ended, and where its files are."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    exit_code: int
    stdout: str
    stderr: str
    seconds: float

    def diagnostics(self) -> str:
        """A failure message for asserts: the command, exit code, time and both streams."""
        return (
            f"{' '.join(self.argv)}\nexit code {self.exit_code} after {self.seconds:.1f}s\n"
            f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}"
        )


@dataclass(frozen=True)
class ClaudeRun(AgentRun):
    """``result``: the ``--output-format json`` object, None when stdout was not JSON."""

    result: dict[str, Any] | None = None


@dataclass(frozen=True)
class CodexRun(AgentRun):
    """``events``: the ``--json`` JSONL events; ``last_message``: the ``-o`` file, if written."""

    events: list[dict[str, Any]] = field(default_factory=list)
    last_message: str | None = None
    config: str = ""


# --- installation checks ----------------------------------------------------------------------


def pinned_version(package: str) -> str:
    """The version ``package-lock.json`` pins for ``package``."""
    lock = json.loads((AGENTS_DIR / "package-lock.json").read_text())
    version: str = lock["packages"][f"node_modules/{package}"]["version"]
    return version


def installed_version(package: str) -> str | None:
    manifest = NODE_MODULES / package / "package.json"
    if not manifest.is_file():
        return None
    version: str = json.loads(manifest.read_text())["version"]
    return version


def _check_installed(package: str, binary: Path) -> Path:
    pinned, installed = pinned_version(package), installed_version(package)
    if installed is None or not os.access(binary, os.X_OK):
        raise AgentCLIMissing(f"{package} is not installed: {INSTALL_HINT}")
    if installed != pinned:
        raise AgentCLIMissing(
            f"{package} {installed} is installed but the lock pins {pinned}: {INSTALL_HINT}"
        )
    return binary


def claude_binary() -> Path:
    """``claude``, checked: the pinned version, with the native binary its postinstall placed."""
    binary = _check_installed(CLAUDE_PACKAGE, NODE_MODULES / ".bin" / "claude")
    if binary.resolve().stat().st_size < _STUB_MAX_BYTES:
        raise AgentCLIMissing(
            f"{CLAUDE_PACKAGE} is only its placeholder (its postinstall, which links the "
            f"native binary from the platform package, did not run): {INSTALL_HINT}"
        )
    return binary


def codex_binary() -> Path:
    """``codex`` (the npm launcher, which execs the platform package's native binary)."""
    return _check_installed(CODEX_PACKAGE, NODE_MODULES / ".bin" / "codex")


# --- running ----------------------------------------------------------------------------------


def _dirs(root: Path) -> dict[str, Path]:
    dirs = {name: root / name for name in ("home", "tmp", "work")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    return dirs


def _base_env(dirs: Mapping[str, Path]) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(dirs["home"]),
        "TMPDIR": str(dirs["tmp"]),
        "LANG": "C.UTF-8",
    }


def _run(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float
) -> tuple[int, str, str, float]:
    """Run to completion or kill the whole process group after ``timeout`` seconds."""
    started = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so a timeout kills its children too
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        try:
            stdout, stderr = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a grandchild in another session holds the pipes
            proc.kill()
            stdout, stderr = "", ""
        raise AgentTimeout(
            f"{argv[0]} did not finish within {timeout}s and was killed\n"
            f"--- stdout ---\n{stdout[-4000:]}\n--- stderr ---\n{stderr[-4000:]}",
            stdout,
            stderr,
        ) from None
    return proc.returncode, stdout, stderr, time.monotonic() - started


def claude_env(
    *,
    base_url: str,
    dirs: Mapping[str, Path],
    api_key: str | None = None,
    auth_token: str | None = None,
    model: str = "claude-sonnet-4-5",
    small_model: str | None = None,
) -> dict[str, str]:
    """The complete environment for a headless, offline ``claude -p`` (see the module doc)."""
    if (api_key is None) == (auth_token is None):
        raise ValueError("give exactly one of api_key (x-api-key) and auth_token (Bearer)")
    small = small_model or model
    env = _base_env(dirs)
    env.update(
        {
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_MODEL": model,
            "ANTHROPIC_DEFAULT_SONNET_MODEL": model,
            "ANTHROPIC_DEFAULT_OPUS_MODEL": model,
            "ANTHROPIC_DEFAULT_HAIKU_MODEL": small,
            "ANTHROPIC_SMALL_FAST_MODEL": small,
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_GROWTHBOOK": "1",
            "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
        }
    )
    if api_key is not None:
        env["ANTHROPIC_API_KEY"] = api_key
    if auth_token is not None:
        env["ANTHROPIC_AUTH_TOKEN"] = auth_token
    return env


def run_claude(
    prompt: str,
    *,
    base_url: str,
    root: Path,
    api_key: str | None = None,
    auth_token: str | None = None,
    model: str = "claude-sonnet-4-5",
    small_model: str | None = None,
    max_turns: int = 3,
    tools: str | None = None,
    allowed_tools: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ClaudeRun:
    """``claude -p <prompt> --output-format json`` against ``base_url``, headless and offline.

    ``base_url`` is the root Claude Code appends ``/v1/messages?beta=true`` to (no ``/v1``).
    Exactly one of ``api_key`` (sent as ``x-api-key``) and ``auth_token`` (``Authorization:
    Bearer``). ``tools=None`` keeps Claude Code's default tool set; ``""`` sends none; else a
    comma-separated list of built-in tool names. ``allowed_tools`` run without a permission
    prompt (``["Bash(echo *)"]``). ``extra_env`` is applied last and may override anything.
    """
    binary = claude_binary()
    dirs = _dirs(root)
    env = claude_env(
        base_url=base_url,
        dirs=dirs,
        api_key=api_key,
        auth_token=auth_token,
        model=model,
        small_model=small_model,
    )
    env.update(extra_env or {})
    argv = [
        str(binary),
        "-p",
        "--output-format",
        "json",
        "--max-turns",
        str(max_turns),
        "--no-session-persistence",
    ]
    if tools is not None:
        argv += ["--tools", tools]
    if allowed_tools:
        argv += ["--allowedTools", *allowed_tools]
    argv += [*extra_args, "--", prompt]
    code, stdout, stderr, seconds = _run(argv, env, dirs["work"], timeout)
    try:
        parsed = json.loads(stdout)
    except json.JSONDecodeError:
        parsed = None
    return ClaudeRun(
        argv=tuple(argv),
        env=env,
        cwd=dirs["work"],
        exit_code=code,
        stdout=stdout,
        stderr=stderr,
        seconds=seconds,
        result=parsed if isinstance(parsed, dict) else None,
    )


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _toml(table: Mapping[str, Any], prefix: str = "") -> str:
    """A nested mapping as TOML: scalars first, then one ``[section]`` per sub-mapping."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, Mapping)]
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, value in table.items():
        if isinstance(value, Mapping):
            name = f"{prefix}{key}"
            out += f"\n[{name}]\n" + _toml(value, f"{name}.")
    return out


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def codex_config(
    *,
    base_url: str,
    model: str = "gpt-5.5",
    stream_idle_timeout_ms: int = 20_000,
    overrides: Mapping[str, Any] | None = None,
) -> str:
    """The ``config.toml`` for a headless, offline ``codex exec`` (see the module doc).

    ``overrides`` is deep-merged last, e.g. ``{"model_providers": {"baton": {"base_url": ...}}}``
    or ``{"model_reasoning_effort": "high"}``.
    """
    config: dict[str, Any] = {
        "model": model,
        "model_provider": CODEX_PROVIDER,
        "check_for_update_on_startup": False,
        "model_providers": {
            CODEX_PROVIDER: {
                "name": "Baton",
                "base_url": base_url,
                "env_key": CODEX_KEY_ENV,
                "wire_api": "responses",
                "request_max_retries": 0,
                "stream_max_retries": 0,
                "stream_idle_timeout_ms": stream_idle_timeout_ms,
            }
        },
        "analytics": {"enabled": False},
        "feedback": {"enabled": False},
        "otel": {"exporter": "none"},
        "features": {"plugins": False, "unbounded_connection_retries": False},
    }
    text = _toml(_merge(config, overrides or {}))
    tomllib.loads(text)  # fail here, not inside codex, if an override made it invalid
    return text


def run_codex(
    prompt: str,
    *,
    base_url: str,
    api_key: str,
    root: Path,
    model: str = "gpt-5.5",
    sandbox: str = "read-only",
    stream_idle_timeout_ms: int = 20_000,
    config_overrides: Mapping[str, Any] | None = None,
    extra_args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> CodexRun:
    """``codex exec --json <prompt>`` against ``base_url``, headless and offline.

    ``base_url`` is where Codex posts ``/responses`` (the relay's ``/v1``); ``api_key`` goes
    in ``BATON_API_KEY``, which the provider's ``env_key`` names, and is sent as ``Authorization:
    Bearer``. ``sandbox`` is ``codex exec -s`` (``read-only``, ``workspace-write``...).
    """
    binary = codex_binary()
    dirs = _dirs(root)
    codex_home = root / "codex"
    codex_home.mkdir(exist_ok=True)
    config = codex_config(
        base_url=base_url,
        model=model,
        stream_idle_timeout_ms=stream_idle_timeout_ms,
        overrides=config_overrides,
    )
    (codex_home / "config.toml").write_text(config)
    last_message_file = root / "codex-last-message.txt"
    last_message_file.unlink(missing_ok=True)
    env = _base_env(dirs)
    env.update({"CODEX_HOME": str(codex_home), CODEX_KEY_ENV: api_key})
    env.update(extra_env or {})
    argv = [
        str(binary),
        "exec",
        "--strict-config",
        "--skip-git-repo-check",
        "--ephemeral",
        "--json",
        "-s",
        sandbox,
        "-o",
        str(last_message_file),
        *extra_args,
        "--",
        prompt,
    ]
    code, stdout, stderr, seconds = _run(argv, env, dirs["work"], timeout)
    events: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return CodexRun(
        argv=tuple(argv),
        env=env,
        cwd=dirs["work"],
        exit_code=code,
        stdout=stdout,
        stderr=stderr,
        seconds=seconds,
        events=events,
        last_message=last_message_file.read_text() if last_message_file.exists() else None,
        config=config,
    )

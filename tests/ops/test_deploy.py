"""The production compose file: its structure, and every variable it passes exists in settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BATON_SERVICES = ("migrate", "web", "worker", "beat", "usage-consumer")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def settings_names() -> set[str]:
    """Environment variables Baton reads (config/settings.py, and the readers in config/env.py)."""
    source = (ROOT / "config" / "settings.py").read_text()
    return set(re.findall(r"""env(?:str|bool|int|float|list)\(\s*["']([A-Z0-9_]+)["']""", source))


def test_compose_has_the_production_shape() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "beat", "lb"} <= services.keys()
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["command"][-2:] == ["migrate", "--no-input"]
    for name in ("web", "worker", "beat", "usage-consumer"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    web = services["web"]
    assert "python -m gateway.serve config.asgi:application" in " ".join(web["command"])
    assert "--workers" in " ".join(web["command"])
    assert int(str(web["deploy"]["replicas"]).split(":-")[-1].strip("}")) >= 2
    assert "readyz" in " ".join(web["healthcheck"]["test"])
    assert web["environment"]["PROMETHEUS_MULTIPROC_DIR"] in web["tmpfs"]
    assert "worker" in services["worker"]["command"] and "beat" in services["beat"]["command"]
    lb = services["lb"]
    assert lb["image"].startswith("nginx:")
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in lb["volumes"]


def test_nginx_streams_without_buffering() -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    for directive in (
        "proxy_buffering off;",
        "proxy_request_buffering off;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "server web:8000",
    ):
        assert directive in conf
    assert re.search(r"location = /metrics \{ return 404; \}", conf)


def test_every_variable_passed_to_baton_exists_in_settings() -> None:
    known = settings_names()
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "BATON_METRICS_TOKEN"} <= known
    services = compose()["services"]
    passed: set[str] = set()
    for name in BATON_SERVICES:
        passed |= set(services[name].get("environment", {}))
    example = (DEPLOY / "baton.env.example").read_text()
    passed |= {
        line.split("=", 1)[0].strip()
        for line in example.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    unknown = sorted(passed - known)
    assert not unknown, f"deploy passes variables config/settings.py never reads: {unknown}"


def test_compose_file_points_at_an_env_file_that_is_documented() -> None:
    web = compose()["services"]["web"]
    assert web["env_file"] == "baton.env"
    assert (DEPLOY / "baton.env.example").exists()


def test_nginx_keeps_the_scheme_a_tls_terminator_reported() -> None:
    """Behind a TLS terminator nginx's own $scheme is http; the reported one must reach Baton."""
    conf = (DEPLOY / "nginx.conf").read_text()
    assert "proxy_set_header X-Forwarded-Proto $forwarded_proto;" in conf
    mapping = re.search(r"map \$http_x_forwarded_proto \$forwarded_proto \{(.*?)\}", conf, re.S)
    assert mapping is not None
    rules = dict(line.split() for line in mapping.group(1).strip().rstrip(";").split(";"))
    assert rules == {"default": "$http_x_forwarded_proto", '""': "$scheme"}

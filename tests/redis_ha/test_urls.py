"""Redis URLs: every form Baton reads, what each means, and a clear refusal of the rest."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from config.redis_clients import (
    RedisURLError,
    celery_broker,
    describe,
    is_cluster,
    parse,
    redacted,
)
from tests.processes import ROOT


def test_one_server_urls_mean_what_redis_py_says() -> None:
    target = parse("rediss://user:p%40ss@cache.internal:6380/3?socket_timeout=2")
    assert target.kind == "single"
    assert target.options["host"] == "cache.internal"
    assert (target.options["port"], target.options["db"]) == (6380, 3)
    assert target.options["password"] == "p@ss"
    assert target.options["socket_timeout"] == 2.0
    assert parse("unix:///run/redis.sock").options["path"] == "/run/redis.sock"
    assert not target.replicated


def test_a_sentinel_url_names_its_sentinels_service_and_database() -> None:
    target = parse(
        "redis+sentinel://:s%3Acret@s1,s2:26380,[::1]:26381/mymaster/2"
        "?sentinel_password=watch&socket_timeout=1.5"
    )
    assert target.kind == "sentinel"
    assert target.nodes == (("s1", 26379), ("s2", 26380), ("::1", 26381))
    assert (target.service, target.db) == ("mymaster", 2)
    assert target.options == {"password": "s:cret", "db": 2, "socket_timeout": 1.5}
    assert target.sentinel_auth == {"password": "watch"}
    assert target.replicated
    tls = parse("rediss+sentinel://s1/mymaster?ssl_cert_reqs=required")
    assert tls.tls and tls.options["ssl"] is True and tls.db == 0


def test_a_cluster_url_names_its_seed_nodes() -> None:
    target = parse("redis+cluster://default:pw@n1:7000,n2,n3:7002/")
    assert target.kind == "cluster"
    assert target.nodes == (("n1", 7000), ("n2", 6379), ("n3", 7002))
    assert target.options == {"username": "default", "password": "pw"}
    assert is_cluster("rediss+cluster://n1") and not is_cluster("redis://n1")
    assert parse("redis+cluster://n1/0").kind == "cluster"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("memcached://x", "starts with one of"),
        ("redis+sentinel://s1:26379", "names its service"),
        ("redis+sentinel://s1/a/b/c", "/service[/db]"),
        ("redis+sentinel://s1/mymaster/x", "database must be a number"),
        ("redis+sentinel://s1:port/mymaster", "port of 's1' is not a number"),
        ("redis+cluster://n1:70000", "out of range"),
        ("redis+cluster://n1/1", "only database 0"),
        ("redis+cluster://", "no host"),
        ("redis://localhost/0?socket_timeout=soon", "socket_timeout"),
    ],
)
def test_a_url_baton_cannot_read_is_refused_saying_why(url: str, says: str) -> None:
    with pytest.raises(RedisURLError) as refused:
        parse(url)
    assert says in str(refused.value)


def test_passwords_stay_out_of_descriptions() -> None:
    for url in (
        "redis://:hunter22@h:6379/0",
        "redis+sentinel://u:hunter22@s1,s2/m?sentinel_password=hunter22",
        "redis+cluster://:hunter22@n1,n2",
    ):
        assert "hunter22" not in redacted(url)
        assert "hunter22" not in describe(url)
    assert (
        describe("redis+sentinel://s1,s2:1/m/1") == "Sentinel service 'm' via s1:26379,s2:1 (db 1)"
    )


def test_celery_gets_kombus_sentinel_form_from_a_sentinel_url() -> None:
    broker = celery_broker("redis+sentinel://:pw@s1,s2:26380/mymaster/4?sentinel_password=sp")
    assert broker.url == "sentinel://:pw@s1:26379;sentinel://:pw@s2:26380/4"
    assert broker.transport_options == {
        "master_name": "mymaster",
        "sentinel_kwargs": {"password": "sp"},
    }
    assert celery_broker("redis://h:6379/1").url == "redis://h:6379/1"
    with pytest.raises(RedisURLError, match="cannot use a Redis Cluster"):
        celery_broker("redis+cluster://n1")


def settings_of(env: dict[str, str], expression: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh process with ``env``, printing ``expression``."""
    environ = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    environ.update({"BATON_TESTING": "1", "DEBUG": "1", **env})
    return subprocess.run(
        [sys.executable, "-c", f"from config import settings as s; print({expression})"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )


def test_settings_refuse_a_cluster_without_a_broker_of_its_own() -> None:
    refused = settings_of({"REDIS_URL": "redis+cluster://n1:7000"}, "1")
    assert refused.returncode != 0
    assert "CELERY_BROKER_URL" in refused.stderr and "kombu" in refused.stderr
    accepted = settings_of(
        {"REDIS_URL": "redis+cluster://n1:7000", "CELERY_BROKER_URL": "redis://b:6379/0"},
        "s.CELERY_BROKER_URL, s.BATON_USAGE_WAIT_REPLICAS",
    )
    assert accepted.stdout.strip() == "redis://b:6379/0 1", accepted.stderr


def test_settings_name_the_variable_of_a_bad_url() -> None:
    refused = settings_of({"REDIS_URL": "redis+sentinel://s1:26379"}, "1")
    assert "REDIS_URL is not a Redis URL Baton reads" in refused.stderr
    refused = settings_of(
        {"REDIS_URL": "redis://h", "BATON_LIMITS_REDIS_URL": "redis+cluster://n1/2"}, "1"
    )
    assert "BATON_LIMITS_REDIS_URL is not a Redis URL Baton reads" in refused.stderr


def test_settings_translate_a_sentinel_url_for_celery() -> None:
    done = settings_of(
        {"REDIS_URL": "redis+sentinel://s1,s2/mymaster/1"},
        "s.CELERY_BROKER_URL, s.CELERY_BROKER_TRANSPORT_OPTIONS, s.BATON_USAGE_WAIT_REPLICAS",
    )
    assert done.stdout.strip() == (
        "sentinel://s1:26379;sentinel://s2:26379/1 {'master_name': 'mymaster'} 1"
    ), done.stderr
    one = settings_of({"REDIS_URL": "redis://h:6379/0"}, "s.BATON_USAGE_WAIT_REPLICAS")
    assert one.stdout.strip() == "0"

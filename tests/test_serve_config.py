"""`raceway-tui serve -c raceway.toml`: the original's configuration file, RACEWAY_*
overrides, flags over both; rate limiting (a burst), X-Forwarded-For only from trusted
proxies, CORS from configured origins, the distributed-tracing / race / anomaly switches."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from server_proc import ServerProcess
from test_server_parity import linked_events

from raceway_core.server.config_file import ConfigError, load, serve_options

ROOT = Path(__file__).resolve().parent.parent

# every key of the original's file (core/src/config.rs), with non-default values
FULL = """
[server]
host = "0.0.0.0"
port = 9090
verbose = true
cors_enabled = true
cors_origins = ["http://localhost:3000", "https://app.example.com"]
rate_limit_enabled = true
rate_limit_rpm = 600
auth_enabled = true
api_keys = ["k1", "k2"]
ui_password = "secret"

[storage]
backend = "memory"

[storage.postgres]
connection_string = "postgresql://u:p@db/raceway"
max_connections = 20
min_connections = 2
connection_timeout_seconds = 30
auto_migrate = true

[engine]
buffer_size = 50000
batch_size = 500
flush_interval_ms = 200

[race_detection]
enabled = false

[anomaly_detection]
enabled = false

[distributed_tracing]
enabled = true

[logging]
level = "debug"
include_modules = true

[development]
cors_allow_all = false
"""


def write(tmp_path, text, name="raceway.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_every_key_of_the_original_is_read(tmp_path):
    s = load(write(tmp_path, FULL), environ={})
    assert s.get("server", "port") == 9090 and s.get("storage", "postgres", "max_connections") == 20
    assert serve_options(s) == {
        "host": "0.0.0.0", "port": 9090, "db": ":memory:", "api_keys": ("k1", "k2"),
        "cors_origins": ("http://localhost:3000", "https://app.example.com"), "rate_limit_rpm": 600,
        "distributed_tracing": True, "race_detection": False, "anomaly_detection": False, "log_level": "debug"}
    no_effect = [n for n in s.notes if "no effect" in n]
    assert any(n.startswith("server.ui_password") for n in no_effect)
    assert any(n.startswith("engine.batch_size") for n in no_effect)
    assert not [n for n in s.notes if "unknown" in n]


def test_unknown_keys_are_reported_not_fatal(tmp_path):
    s = load(write(tmp_path, "[server]\nprot = 1\n[storag]\nbackend = 'memory'\n"), environ={})
    assert [n.split(": ", 1)[1] for n in s.notes] == ["unknown key server.prot (ignored)", "unknown key storag (ignored)"]


@pytest.mark.parametrize("text, message", [
    ("[server]\nport = 'abc'", "server.port: expected an integer 1..65535, got 'abc'"),
    ("[server]\nport = 0", "server.port: expected an integer 1..65535, got 0"),
    ("[server]\nrate_limit_rpm = 0", "server.rate_limit_rpm: expected an integer >= 1, got 0"),
    ("[server]\ncors_origins = 'http://x'", "server.cors_origins: expected an array of strings"),
    ("[server]\ntrusted_proxies = ['proxy.local']", "server.trusted_proxies: expected an array of IP addresses"),
    ("[server]\nauth_enabled = 'yes'", "server.auth_enabled: expected true or false"),
    ("[storage]\nbackend = 'oracle'", "storage.backend: expected one of memory, duckdb, postgres, supabase"),
    ("[storage]\nbackend = 'postgres'", "storage.postgres.connection_string: the postgres backend needs it"),
    ("[logging]\nlevel = 'loud'", "logging.level: expected one of trace, debug, info, warn, error"),
    ("server = 5", "server: expected a table [server]"),
    ("[server]\nauth_enabled = true", "server.api_keys: auth_enabled is true but no key is given"),
    ("[server\nport = 1", "not valid TOML"),
])
def test_invalid_values_are_refused_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as exc:
        load(write(tmp_path, text), environ={})
    assert message in str(exc.value)


def test_environment_overrides_the_file(tmp_path):
    p = write(tmp_path, "[server]\nport = 9090\ncors_origins = ['http://a']\n[distributed_tracing]\nenabled = false\n")
    env = {"RACEWAY_SERVER_PORT": "9191", "RACEWAY_SERVER_CORS_ORIGINS": "http://b, http://c",
           "RACEWAY_DISTRIBUTED_TRACING_ENABLED": "true", "RACEWAY_API_KEY": "not a config key"}
    opts = serve_options(load(p, environ=env))
    assert (opts["port"], opts["cors_origins"], opts["distributed_tracing"]) == (9191, ("http://b", "http://c"), True)
    with pytest.raises(ConfigError, match="RACEWAY_SERVER_RATE_LIMIT_RPM \\(environment\\): expected an integer"):
        load(p, environ={"RACEWAY_SERVER_RATE_LIMIT_RPM": "lots"})
    assert serve_options(load(None, environ={"RACEWAY_STORAGE_BACKEND": "memory"})) == {"db": ":memory:"}


def test_what_each_switch_means(tmp_path):
    def opts(text):
        return serve_options(load(write(tmp_path, text), environ={}))
    assert opts("[server]\ncors_enabled = false\ncors_origins = ['http://a']") == {"cors_origins": ()}
    assert opts("[development]\ncors_allow_all = true") == {"cors_origins": ("*",)}
    assert opts("[server]\napi_keys = ['k']") == {"api_keys": ()}  # keys count only with auth_enabled
    assert opts("[server]\nrate_limit_rpm = 5") == {}  # and a limit only when enabled
    assert opts("[logging]\nlevel = 'warn'") == {"log_level": "warning"}
    assert opts("[storage]\nbackend = 'duckdb'\npath = 'x.duckdb'") == {"db": "x.duckdb"}


# -- a real server ------------------------------------------------------------------
def serve(tmp_path, text, **kw) -> ServerProcess:
    # --port 0 on the command line overrides the file's port: flags win
    return ServerProcess(mode="one-process", extra=("-c", str(write(tmp_path, text))), **kw)


def test_flags_override_the_file_and_unknown_keys_are_reported(tmp_path):
    with serve(tmp_path, "[server]\nport = 1\nbogus_key = 1\n[storage]\nbackend = 'memory'\n") as s:
        assert httpx.get(s.url + "/health", timeout=60).status_code == 200  # listening on --port 0's port, not 1
        assert ":1\n" not in "".join(s.output)
        assert any("unknown key server.bogus_key" in line for line in s.output)


def test_a_bad_file_stops_serve_with_the_keys_name(tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "raceway_tui.cli", "serve", "-c",
                        str(write(tmp_path, "[server]\nrate_limit_rpm = -3\n"))], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "server.rate_limit_rpm" in r.stderr


def burst(client, n, **kw) -> list[httpx.Response]:
    return [client.get("/api/traces", **kw) for _ in range(n)]


def test_rate_limit_per_key_else_per_address_with_retry_after(tmp_path):
    conf = "[server]\nrate_limit_enabled = true\nrate_limit_rpm = 4\nauth_enabled = true\napi_keys = ['ka', 'kb']\n"
    with serve(tmp_path, conf) as s, httpx.Client(base_url=s.url, timeout=60) as c:
        a = burst(c, 6, headers={"Authorization": "Bearer ka"})
        assert [r.status_code for r in a] == [200] * 4 + [429] * 2  # a burst of rpm, then refused
        last = a[-1]
        assert last.json() == {"success": False, "data": None, "error": "Too Many Requests"}
        assert 1 <= int(last.headers["retry-after"]) <= 15  # the next slot: 60 s / 4
        assert [r.status_code for r in burst(c, 4, headers={"X-Raceway-Key": "kb"})] == [200] * 4  # its own bucket
        # no key (401s) and unknown keys share the address's bucket: inventing keys gains nothing
        codes = [r.status_code for r in burst(c, 3)] + [r.status_code for r in
                                                         (c.get("/api/traces", headers={"Authorization": f"Bearer x{i}"})
                                                          for i in range(3))]
        assert codes == [401] * 4 + [429] * 2


def test_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path):
    conf = "[server]\nrate_limit_enabled = true\nrate_limit_rpm = 2\n"
    with serve(tmp_path, conf) as s, httpx.Client(base_url=s.url, timeout=60) as c:
        codes = [c.get("/api/traces", headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(4)]
        assert codes == [200, 200, 429, 429]  # the peer is not a trusted proxy: one bucket
    with serve(tmp_path, conf + "trusted_proxies = ['127.0.0.0/8']\n") as s, httpx.Client(base_url=s.url, timeout=60) as c:
        codes = [c.get("/api/traces", headers={"X-Forwarded-For": f"203.0.113.7, 10.0.0.{i}"}).status_code
                 for i in range(4)]
        assert codes == [200] * 4  # four clients behind the proxy: four buckets
        same = [c.get("/api/traces", headers={"X-Forwarded-For": "198.51.100.1, 127.0.0.5"}).status_code
                for _ in range(3)]
        assert same == [200, 200, 429]  # the rightmost untrusted hop is the client


def test_cors_only_for_configured_origins(tmp_path):
    pre = {"Access-Control-Request-Method": "GET"}
    with serve(tmp_path, "[server]\ncors_origins = ['http://ok.example']\n") as s, httpx.Client(base_url=s.url, timeout=60) as c:
        ok = c.get("/api/traces", headers={"Origin": "http://ok.example"})
        assert ok.headers["access-control-allow-origin"] == "http://ok.example"
        assert "access-control-allow-origin" not in c.get("/api/traces", headers={"Origin": "http://evil.example"}).headers
        assert c.options("/api/traces", headers={"Origin": "http://evil.example", **pre}).status_code == 400
    with serve(tmp_path, "[server]\ncors_enabled = false\n") as s, httpx.Client(base_url=s.url, timeout=60) as c:
        assert "access-control-allow-origin" not in c.get("/api/traces", headers={"Origin": "http://ok.example"}).headers


def test_distributed_tracing_merges_linked_traces(tmp_path):
    body = json.dumps({"events": linked_events()})
    for enabled, expected in ((True, 5), (False, 2)):
        with serve(tmp_path, f"[distributed_tracing]\nenabled = {str(enabled).lower()}\n") as s:
            assert httpx.post(s.url + "/events", content=body, headers={"Content-Type": "application/json"}, timeout=60).status_code == 200
            events = httpx.get(s.url + "/api/traces/t-a", timeout=60).json()["data"]["events"]
            assert len(events) == expected, enabled


def test_race_and_anomaly_detection_switches(tmp_path):
    lines = (ROOT / "sample_traces" / "banking-unsafe.jsonl").read_text().splitlines()
    body = json.dumps({"events": [json.loads(x) for x in lines if x.strip()]})
    for on in (True, False):
        conf = f"[race_detection]\nenabled = {str(on).lower()}\n[anomaly_detection]\nenabled = {str(on).lower()}\n"
        with serve(tmp_path, conf) as s:
            assert httpx.post(s.url + "/events", content=body, headers={"Content-Type": "application/json"}, timeout=60).status_code == 200
            g = httpx.get(s.url + "/api/analyze/global", timeout=60).json()["data"]
            races = httpx.get(s.url + "/api/distributed/global-races", timeout=60).json()["data"]
            assert (g["potential_races"] > 0, races["total_races"] > 0) == (on, on)


def test_limiter_refills_one_request_per_interval():
    from raceway_core.server.ratelimit import ClientAddress, Limiter
    now = [1000.0]
    lim = Limiter(60, clock=lambda: now[0])
    assert all(lim.check("k") == 0 for _ in range(60))  # a burst of rpm
    assert lim.check("k") == pytest.approx(1.0)  # then one per second
    assert lim.check("other") == 0
    now[0] += 1.0
    assert lim.check("k") == 0 and lim.check("k") == pytest.approx(1.0)
    addr = ClientAddress(["10.0.0.0/8"])
    scope = {"client": ("10.1.2.3", 5), "headers": [(b"x-forwarded-for", b"1.2.3.4, 10.9.9.9")]}
    assert addr.of(scope) == "1.2.3.4"
    assert addr.of({**scope, "client": ("192.0.2.1", 5)}) == "192.0.2.1"  # not a trusted peer
    assert ClientAddress().of(scope) == "10.1.2.3"

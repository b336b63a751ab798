"""`raceway-tui serve -c raceway.toml`: the original Raceway server's configuration file
(core/src/config.rs: its sections, keys, types and checks) and RACEWAY_* environment
overrides, resolved into the options of ``serve``.

Precedence: built-in defaults < the file < environment < command-line flags. An
environment override is ``RACEWAY_`` + the key's path in capitals joined by ``_``
(``RACEWAY_SERVER_PORT``, ``RACEWAY_STORAGE_POSTGRES_CONNECTION_STRING``,
``RACEWAY_DISTRIBUTED_TRACING_ENABLED``); lists are comma-separated. Unknown keys
are reported (and ignored, as the original ignores them); a value of the wrong type
or out of range is refused, naming the key. Keys that mean nothing here are
accepted and reported once as having no effect.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from raceway_core.errors import RacewayError


class ConfigError(RacewayError):
    """A configuration value that cannot be used; the message names the key."""


# -- value checkers: (text for the message, function value -> value or raise ValueError) --
def _bool(v):
    if isinstance(v, bool):
        return v
    raise ValueError


def _int(lo: int, hi: int | None = None):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
            raise ValueError
        return v
    return check


def _str(v):
    if isinstance(v, str):
        return v
    raise ValueError


def _strs(v):
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return v
    raise ValueError


def _one_of(*names):
    def check(v):
        if isinstance(v, str) and v.lower() in names:
            return v.lower()
        raise ValueError
    return check


def _networks(v):
    out = []
    for x in _strs(v):
        out.append(ipaddress.ip_network(x.strip(), strict=False))  # ValueError when not an address
    return [str(n) for n in out]


BOOL = ("true or false", _bool)
STRS = ("an array of strings", _strs)
STR = ("a string", _str)


def POS(lo=1, hi=None):  # noqa: N802
    return (f"an integer {lo}..{hi}" if hi else f"an integer >= {lo}", _int(lo, hi))


# Every key of the original's file (and trusted_proxies, ours), with what we do with it.
SCHEMA: dict[str, dict] = {
    "server": {
        "host": STR, "port": POS(1, 65535), "verbose": BOOL,
        "cors_enabled": BOOL, "cors_origins": STRS,
        "rate_limit_enabled": BOOL, "rate_limit_rpm": POS(1),
        "auth_enabled": BOOL, "api_keys": STRS,
        "ui_password": STR,
        "trusted_proxies": ("an array of IP addresses or networks", _networks),
    },
    "storage": {
        "backend": ("one of memory, duckdb, postgres, supabase", _one_of("memory", "duckdb", "postgres", "supabase")),
        "path": STR,  # ours: the DuckDB file of backend "duckdb"
        "postgres": {
            "connection_string": STR, "max_connections": POS(1), "min_connections": POS(0),
            "connection_timeout_seconds": POS(1), "auto_migrate": BOOL,
        },
    },
    "engine": {"buffer_size": POS(1), "batch_size": POS(1), "flush_interval_ms": POS(1)},
    "race_detection": {"enabled": BOOL},
    "anomaly_detection": {"enabled": BOOL},
    "distributed_tracing": {"enabled": BOOL},
    "logging": {"level": ("one of trace, debug, info, warn, error", _one_of("trace", "debug", "info", "warn", "error")),
                "include_modules": BOOL},
    "development": {"cors_allow_all": BOOL},
}

NO_EFFECT = {  # accepted, checked, and said to have no effect here
    "server.ui_password": "raceway-tui serves no web UI",
    "engine.buffer_size": "events are committed as each request arrives (acknowledged once stored)",
    "engine.batch_size": "events are committed as each request arrives (acknowledged once stored)",
    "engine.flush_interval_ms": "events are committed as each request arrives (acknowledged once stored)",
    "storage.postgres.max_connections": "the store keeps its own connections",
    "storage.postgres.min_connections": "the store keeps its own connections",
    "storage.postgres.connection_timeout_seconds": "the store keeps its own connections",
    "storage.postgres.auto_migrate": "the store creates its tables itself",
    "logging.include_modules": "log lines always name their logger",
}


def _leaves(schema: dict, prefix: tuple = ()):
    for k, v in schema.items():
        if isinstance(v, dict):
            yield from _leaves(v, prefix + (k,))
        else:
            yield prefix + (k,), v


LEAVES = dict(_leaves(SCHEMA))
ENV = {"RACEWAY_" + "_".join(p).upper(): p for p in LEAVES}


@dataclass
class Settings:
    """The values given (file and environment) and what was said about them."""
    values: dict[tuple, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def get(self, *path, default=None):
        return self.values.get(path, default)

    def given(self, *path) -> bool:
        return path in self.values


def _env_value(text: str, what: str):
    t = text.strip()
    if what == BOOL[0]:
        if t.lower() in ("true", "1", "yes", "on"):
            return True
        if t.lower() in ("false", "0", "no", "off"):
            return False
        return t
    if what.startswith("an integer"):
        return int(t) if t.lstrip("-").isdigit() else t
    if what.startswith("an array"):
        return [x.strip() for x in t.split(",") if x.strip()]
    return text


def load(path: str | Path | None, environ: dict[str, str] | None = None) -> Settings:
    """The file (if any) and the RACEWAY_* overrides, checked. ConfigError names the key."""
    environ = os.environ if environ is None else environ
    s = Settings()
    if path is not None:
        p = Path(path)
        try:
            doc = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the configuration file {p}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{p}: not UTF-8 text: {exc}") from exc
        _walk(doc, SCHEMA, (), s, str(p))
    for name, keypath in ENV.items():
        if name in environ:
            what, check = LEAVES[keypath]
            s.values[keypath] = _check(_env_value(environ[name], what), what, check, f"{name} (environment)")
    for keypath in s.values:
        dotted = ".".join(keypath)
        if dotted in NO_EFFECT:
            s.notes.append(f"{dotted}: accepted, no effect here ({NO_EFFECT[dotted]})")
    _validate(s)
    return s


def _check(value, what: str, check, where: str):
    try:
        return check(value)
    except ValueError:
        raise ConfigError(f"{where}: expected {what}, got {value!r}") from None


def _walk(doc: dict, schema: dict, prefix: tuple, s: Settings, source: str) -> None:
    for key, value in doc.items():
        path = prefix + (key,)
        dotted = ".".join(path)
        spec = schema.get(key)
        if spec is None:
            s.notes.append(f"{source}: unknown key {dotted} (ignored)")
        elif isinstance(spec, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {dotted}: expected a table [{dotted}], got {value!r}")
            _walk(value, spec, path, s, source)
        else:
            what, check = spec
            s.values[path] = _check(value, what, check, f"{source}: {dotted}")


def _validate(s: Settings) -> None:
    """The original's Config::validate, plus what it would only find out later."""
    backend = s.get("storage", "backend", default="duckdb")
    if backend in ("postgres", "supabase") and not s.get("storage", "postgres", "connection_string"):
        raise ConfigError(f"storage.postgres.connection_string: the {backend} backend needs it")
    if s.get("server", "auth_enabled") and not s.get("server", "api_keys"):
        raise ConfigError("server.api_keys: auth_enabled is true but no key is given (every request would be refused)")


def serve_options(s: Settings) -> dict:
    """The options of ``serve`` that the settings decide (only those given)."""
    out: dict = {}
    if s.given("server", "host"):
        out["host"] = s.get("server", "host")
    if s.given("server", "port"):
        out["port"] = s.get("server", "port")
    backend = s.get("storage", "backend")
    if backend == "memory":
        out["db"] = ":memory:"
    elif backend == "duckdb" or s.given("storage", "path"):
        out["db"] = s.get("storage", "path", default="raceway.duckdb")
    elif backend in ("postgres", "supabase"):
        out["store_url"] = s.get("storage", "postgres", "connection_string")
    if s.given("server", "auth_enabled") or s.given("server", "api_keys"):
        # as the original: keys count only with auth_enabled
        out["api_keys"] = tuple(s.get("server", "api_keys", default=[])) if s.get("server", "auth_enabled") else ()
    if s.get("development", "cors_allow_all"):
        out["cors_origins"] = ("*",)
    elif s.given("server", "cors_enabled") or s.given("server", "cors_origins"):
        enabled = s.get("server", "cors_enabled", default=True)
        out["cors_origins"] = tuple(s.get("server", "cors_origins", default=[])) if enabled else ()
    if s.get("server", "rate_limit_enabled"):
        out["rate_limit_rpm"] = s.get("server", "rate_limit_rpm", default=1000)
    if s.given("server", "trusted_proxies"):
        out["trusted_proxies"] = tuple(s.get("server", "trusted_proxies"))
    if s.given("distributed_tracing", "enabled"):
        out["distributed_tracing"] = s.get("distributed_tracing", "enabled")
    for section in ("race_detection", "anomaly_detection"):
        if s.given(section, "enabled"):
            out[section] = s.get(section, "enabled")
    level = s.get("logging", "level")
    if level is not None or s.get("server", "verbose"):
        level = {"trace": "debug", "warn": "warning", None: "warning"}.get(level, level)
        out["log_level"] = "info" if s.get("server", "verbose") and level in ("warning", "error") else level
    return out

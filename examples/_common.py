"""Shared by the examples: where events go (a file for offline use, or a Raceway server)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from raceway_core.sdk import Config, RacewayClient

SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"


def arguments(name: str, doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--out", type=Path, default=SAMPLES / f"{name}.jsonl",
                   help="NDJSON file to record into (replaced); default: %(default)s")
    p.add_argument("--endpoint", help="send to a Raceway server (e.g. http://localhost:8080) instead of a file")
    return p


def fresh(path: Path) -> Path:
    """The file sink appends: start each recording from an empty file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        os.remove(path)
    return path


def client(service: str, out: Path | None, endpoint: str | None = None, instance: str | None = None) -> RacewayClient:
    return RacewayClient(Config(
        service_name=service,
        # one process, one instance: two runs are two instances (the SDK's own default is <host>-<pid>)
        instance_id=instance or f"{service}-{os.getpid()}",
        environment="example",
        endpoint=endpoint or "http://localhost:8080",
        output_file=None if endpoint else str(out),
        flush_interval=0.2,
    ))

"""Shared by the examples: where events go (a file for offline use, or a Raceway server)."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from raceway_core.sdk import Config, RacewayClient

# Examples never write into the repository unless asked: `make samples` passes
# --out sample_traces/NAME.jsonl; by default a recording goes to the temp folder.
OUT_DIR = Path(tempfile.gettempdir()) / "raceway-examples"


def arguments(name: str, doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=OUT_DIR / f"{name}.jsonl",
                   help="NDJSON file to record into (replaced); default: %(default)s "
                        "(`make samples` records into sample_traces/)")
    p.add_argument("--endpoint", help="send to a Raceway server (e.g. http://127.0.0.1:8080) instead of a file; "
                                      "nothing is written")
    return p


def recorded(out: Path | None, endpoint: str | None) -> None:
    """Say where the events went."""
    print(f"events sent to {endpoint}" if endpoint else f"events recorded in {out}")


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

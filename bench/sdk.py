"""SDK overhead benchmark: what one tracked event costs the instrumented program.

Prints µs per track_state_change on the calling thread for each sink, and for
4 threads at once (the GIL is shared, so that is the contended figure), plus
how long the HTTP sink takes to deliver everything to a local receiver.

    python bench/sdk.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

from common import env_line, usage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def per_event(client, n: int, threads: int = 1) -> float:
    def work():
        with client.trace():
            for i in range(n):
                client.track_state_change("counter", i, i + 1, "Write")

    ts = [threading.Thread(target=work) for _ in range(threads)]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    return (time.perf_counter() - t) / (n * threads) * 1e6


def main(n: int) -> None:
    from eventserver import start_event_server

    from raceway_core.sdk import Config, MemorySink, RacewayClient

    print(env_line())
    tmp = Path(tempfile.mkdtemp())
    base = dict(service_name="bench", warm_up_http=False, max_buffer=10 * n)
    server = start_event_server()
    sinks = {
        "memory": lambda **kw: RacewayClient(Config(**base, **kw), sink=MemorySink()),
        "file": lambda **kw: RacewayClient(Config(**base, output_file=str(tmp / "out.jsonl"), **kw)),
        "http": lambda **kw: RacewayClient(Config(**base, endpoint=server.url, batch_size=500, **kw)),
    }
    for name, make in sinks.items():
        for loc in (True, False):
            client = make(capture_location=loc)
            one = per_event(client, n)
            four = per_event(client, n // 4, threads=4)
            t = time.perf_counter()
            client.shutdown(60)
            drain = time.perf_counter() - t
            s = client.stats()
            print(f"{name:6s} location={'on ' if loc else 'off'}  {one:6.1f} µs/event (1 thread)  "
                  f"{four:6.1f} µs/event (4 threads)  shutdown drain {drain:5.2f} s  "
                  f"sent {s.sent:,} dropped {s.dropped:,}")
    server.stop()


if __name__ == "__main__":
    usage(__doc__)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)

"""Performance investigation: an asyncio API where a few requests are 10x slower.

``GET /api/home?user=N`` (Starlette on uvicorn, 127.0.0.1) authenticates, bumps
a request counter under an asyncio.Lock, then loads the profile, the
recommendations and the ads concurrently and renders the page. For users 4 and
9 the recommendation service misses its cache and takes ~400 ms instead of
~20 ms: their requests take ~10x longer, and that one call is why.

    python examples/slow_api.py                # -> sample_traces/slow-api.jsonl
"""

from __future__ import annotations

import asyncio
import socket
import threading

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from _common import arguments, client, fresh, recorded
from raceway_core.sdk import RacewayASGIMiddleware

USERS = list(range(1, 13))
COLD_CACHE = {4, 9}  # their recommendations are computed, not cached
# Per-user durations (ms), spread on purpose: a few ms of scheduler noise must not look like
# an anomaly (robust z uses the median absolute deviation, here 2.5 to 7 ms).
AUTH = [2, 9, 5, 12, 3, 7, 10, 4, 11, 6, 8, 7]
PROFILE = [5, 14, 9, 19, 7, 12, 16, 6, 11, 18, 8, 13]
RECS = [12, 24, 16, 30, 10, 20, 27, 14, 22, 18, 26, 11]
RECS_COLD = 400
ADS = [3, 11, 6, 15, 4, 9, 13, 5, 8, 14, 7, 10]
RENDER = [6, 3, 10, 5, 12, 8, 2, 9, 4, 11, 7, 7]


def build_app(raceway):
    stats_lock = asyncio.Lock()
    stats = {"requests": 0}

    async def work(ms: int) -> None:
        await asyncio.sleep(ms / 1000)

    async def profile(user: int) -> dict:
        await raceway.track_function_async("db.get_profile", {"user": user}, work(PROFILE[user - 1]))
        return {"name": f"user-{user}"}

    async def recommendations(user: int) -> list:
        ms = RECS_COLD if user in COLD_CACHE else RECS[user - 1]
        await raceway.track_function_async("recommendations.fetch", {"user": user, "cache": user not in COLD_CACHE},
                                           work(ms))
        return [f"item-{user}-{i}" for i in range(3)]

    async def ads(user: int) -> list:
        await raceway.track_function_async("ads.select", {"user": user}, work(ADS[user - 1]))
        return ["ad-1"]

    async def home(request):
        user = int(request.query_params["user"])
        await raceway.track_function_async("auth.verify_token", {"user": user}, work(AUTH[user - 1]))
        async with raceway.tracked_lock(stats_lock, "stats.lock"):
            served = stats["requests"]
            raceway.track_state_change("stats.requests", None, served, "Read")
            stats["requests"] = served + 1
            raceway.track_state_change("stats.requests", served, served + 1, "Write")
        prof, recs, ad = await raceway.gather(profile(user), recommendations(user), ads(user))
        await raceway.track_function_async("render.page", {"user": user}, work(RENDER[user - 1]))
        return JSONResponse({"profile": prof, "recommendations": recs, "ads": ad})

    return RacewayASGIMiddleware(Starlette(routes=[Route("/api/home", home)]), raceway)


def main() -> None:
    args = arguments("slow-api", __doc__).parse_args()
    raceway = client("home-api", None if args.endpoint else fresh(args.out), args.endpoint)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(raceway), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(250):  # wait until uvicorn serves
            if server.started:
                break
            threading.Event().wait(0.02)
        for user in USERS:
            r = httpx.get(f"http://127.0.0.1:{port}/api/home", params={"user": user}, timeout=10)
            r.raise_for_status()
            print(f"user {user:2d}: {r.elapsed.total_seconds() * 1000:6.1f} ms")
    finally:
        server.should_exit = True
        thread.join(5)
        raceway.shutdown()
    if raceway.dropped_events:
        raise SystemExit(f"{raceway.dropped_events} events were dropped")
    recorded(args.out, args.endpoint)


if __name__ == "__main__":
    main()

"""Client configuration (the original SDK's ``Config``, plus sink and clock settings)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class Config:
    endpoint: str = "http://localhost:8080"
    service_name: str = "unknown-service"
    instance_id: str | None = None  # default: $RACEWAY_INSTANCE_ID, else <hostname>-<pid>
    environment: str = field(default_factory=lambda: os.getenv("ENV", "development"))
    batch_size: int = 50  # events per POST
    flush_interval: float = 1.0  # seconds between background flushes
    debug: bool = False  # log every event at DEBUG level (logger "raceway_core.sdk")
    api_key: str | None = None  # default: $RACEWAY_API_KEY
    # -- not in the original SDK -------------------------------------------------
    output_file: str | None = None  # append NDJSON here instead of POSTing to the endpoint
    max_buffer: int = 10_000  # events waiting to be sent; beyond this, new events are dropped
    max_retries: int = 3  # retries of a failed POST before its batch is dropped
    retry_backoff: float = 0.2  # seconds before the first retry; doubles each retry
    request_timeout: float = 5.0  # seconds per POST
    shutdown_timeout: float = 5.0  # longest flush()/shutdown() wait
    max_clock_components: int = 256  # a merge that would grow a clock beyond this is skipped
    capture_location: bool = True  # file:line of the caller on each event
    warm_up_http: bool = True  # prepare httpx for request()/arequest() in a background thread

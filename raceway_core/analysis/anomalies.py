"""Operations far slower than their own baseline (robust z-score over median and MAD).

Baseline key: the operation - FunctionCall(name), DatabaseQuery, HttpRequest(METHOD),
HttpResponse(status), Custom(name), otherwise the kind. Over all loaded events of
a key that have a duration: z = 0.6745 (x - median) / MAD. Anomalous when z > the
threshold (3.5), x >= ``min_ratio`` (1.5) x median (a tiny MAD must not make a 7%
wobble critical) and the key has at least ``min_samples`` (5) samples; severity by
z: > 10 critical, > 5 warning, else minor. When MAD is 0 (most samples identical)
z is undefined (null): an event above the median and at least ``min_ratio`` x it
is anomalous, its severity by x / median: >= 10 critical, >= 5 warning, else minor.
"""

from __future__ import annotations

from raceway_core import rawtext

KEY = f"""CASE kind
    WHEN 'FunctionCall' THEN 'FunctionCall(' || coalesce(function_name, '?') || ')'
    WHEN 'HttpRequest' THEN 'HttpRequest(' || coalesce(http_method, '?') || ')'
    WHEN 'HttpResponse' THEN 'HttpResponse(' || coalesce(CAST(http_status AS VARCHAR), '?') || ')'
    WHEN 'Custom' THEN 'Custom(' || coalesce({rawtext.custom_name()}, '?') || ')'
    ELSE kind END"""

# The defaults every caller shares (the session caches the rows at these settings).
MIN_SAMPLES, THRESHOLD, MIN_RATIO = 5, 3.5, 1.5


def sql(min_samples: int = MIN_SAMPLES, threshold: float = THRESHOLD, trace_filter: str = "",
        min_ratio: float = MIN_RATIO) -> str:
    return f"""
    WITH d AS (
        SELECT seq, id, trace_id, {KEY} AS key, duration_ns AS x FROM events WHERE duration_ns IS NOT NULL
    ), base AS (
        SELECT key, count(*) AS n, median(x) AS med, mad(x) AS mad FROM d GROUP BY key
    ), scored AS (
        SELECT d.seq, d.id AS event_id, d.trace_id, d.key, d.x, b.med, b.mad, b.n,
               CASE WHEN b.mad > 0 THEN 0.6745 * (d.x - b.med) / b.mad END AS z,
               CASE WHEN b.med > 0 THEN d.x / b.med END AS ratio
        FROM d JOIN base b USING (key)
        WHERE b.n >= {int(min_samples)}
    )
    SELECT seq, event_id, trace_id, key, x / 1e6 AS actual_ms, med / 1e6 AS expected_ms, z,
           CASE WHEN mad > 0 THEN (CASE WHEN z > 10 THEN 'critical' WHEN z > 5 THEN 'warning' ELSE 'minor' END)
                WHEN ratio >= 10 THEN 'critical' WHEN ratio >= 5 THEN 'warning' ELSE 'minor' END AS severity,
           n AS samples
    FROM scored
    WHERE x >= {float(min_ratio)} * med AND x > med
      AND ((mad > 0 AND z > {float(threshold)}) OR mad = 0)
    {trace_filter}
    ORDER BY coalesce(z, ratio) DESC NULLS LAST, seq
    """

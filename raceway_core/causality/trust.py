"""Whether a trace's given vector clocks are valid, and the edges they prove.

Rule 6: a given ``causality_vector`` is trusted only when it is a valid vector
clock for the input. Clocks are judged per trace (executions of one ShiViz log
reuse host names; across traces only lock hand-offs order events). A trace's
clocks are valid when:

1. every event has a clock;
2. every context owns one component whose value at its i-th event is exactly i
   (it runs 1..N: the context alone advances it, one step per event);
3. no component is owned by two contexts;
4. along a context no component decreases or disappears;
5. whenever an event first learns ``k`` for another context's component, that
   context has a k-th event and the event knows everything that one knew.

Components owned by no context of the trace (another trace's, through a lock)
are ignored. Raceway SDKs stamp one component per service instance, shared by
the concurrent requests of that instance: rule 2 fails (values jump, or two
contexts advance it) and the structural edges decide. ShiViz logs pass.

For a trusted trace, each first-learned reference is an edge ``x_k -> e``
(kind 'clock'); with program order these give exactly the clocks' order.
"""

from __future__ import annotations

import duckdb

ENTRIES = """
CREATE OR REPLACE TEMP TABLE _cv AS
SELECT o.seq, o.trace_id, o.ctx, o.pos, u.c AS c, u.n AS n
FROM (SELECT seq, unnest(clock) AS u FROM events WHERE len(clock) > 0) x
JOIN hb.ev o USING (seq)
"""

OWNERS = """
CREATE OR REPLACE TEMP TABLE _own AS
WITH cand AS (
    SELECT cv.ctx, cv.c, count(*) AS k, count(*) FILTER (WHERE cv.n = cv.pos) AS exact
    FROM _cv cv GROUP BY cv.ctx, cv.c
)
SELECT x.ctx, x.trace_id, x.thread_id,
       -- prefer a component named after the context when several qualify
       arg_min(cand.c, (position(x.thread_id IN cand.c) = 0, cand.c)) AS comp
FROM cand JOIN hb.ctx x USING (ctx)
WHERE cand.k = x.events AND cand.exact = x.events
GROUP BY x.ctx, x.trace_id, x.thread_id
"""

# Traces that can still be trusted after the cheap checks (1-3); the rest skip the costly ones.
CANDIDATES = """
CREATE OR REPLACE TEMP TABLE _cand AS
SELECT x.trace_id FROM hb.ctx x LEFT JOIN _own o USING (ctx)
GROUP BY x.trace_id
HAVING count(*) = count(o.ctx) AND count(DISTINCT o.comp) = count(o.ctx)
   AND x.trace_id NOT IN (SELECT DISTINCT trace_id FROM events WHERE clock IS NULL OR len(clock) = 0)
"""

REFS = """
CREATE OR REPLACE TEMP TABLE _refs AS
WITH owned AS (SELECT trace_id, comp, ctx AS owner FROM _own WHERE trace_id IN (SELECT trace_id FROM _cand)),
steps AS (
    SELECT cv.*, lag(cv.n) OVER (PARTITION BY cv.ctx, cv.c ORDER BY cv.pos) AS prev_n,
           lag(cv.pos) OVER (PARTITION BY cv.ctx, cv.c ORDER BY cv.pos) AS prev_pos,
           min(cv.pos) OVER (PARTITION BY cv.ctx, cv.c) AS first_pos
    FROM _cv cv WHERE cv.trace_id IN (SELECT trace_id FROM _cand)
)
SELECT s.*, w.owner FROM steps s JOIN owned w ON w.trace_id = s.trace_id AND w.comp = s.c
"""

VERDICTS = """
CREATE OR REPLACE TABLE hb.trust AS
WITH traces AS (
    SELECT x.trace_id, count(*) AS contexts, sum(x.events) AS events FROM hb.ctx x GROUP BY x.trace_id
), no_clock AS (
    SELECT e.trace_id, count(*) AS n, any_value(e.id) AS example
    FROM events e WHERE e.clock IS NULL OR len(e.clock) = 0 GROUP BY e.trace_id
), unowned AS (
    SELECT x.trace_id, count(*) AS n, any_value(x.thread_id) AS example
    FROM hb.ctx x ANTI JOIN _own o USING (ctx) GROUP BY x.trace_id
), shared AS (
    SELECT trace_id, comp, list(thread_id ORDER BY thread_id) AS owners
    FROM _own GROUP BY trace_id, comp HAVING count(*) > 1
), gaps AS (  -- a component that decreases or disappears along a context
    SELECT r.trace_id, any_value(r.c) AS c, count(*) AS n FROM (
        SELECT cv.trace_id, cv.c, cv.ctx, count(*) AS k, min(cv.pos) AS first_pos,
               bool_or(cv.n < cv.prev_n) AS decreases
        FROM (SELECT *, lag(n) OVER (PARTITION BY ctx, c ORDER BY pos) AS prev_n FROM _cv
              WHERE trace_id IN (SELECT trace_id FROM _cand)) cv
        GROUP BY cv.trace_id, cv.c, cv.ctx
    ) r JOIN hb.ctx x ON x.ctx = r.ctx
    WHERE r.decreases OR r.k <> x.events - r.first_pos + 1
    GROUP BY r.trace_id
), new_refs AS (  -- first time an event learns a (larger) value of another context's component
    SELECT * FROM _refs WHERE owner <> ctx AND (prev_n IS NULL OR n > prev_n) AND n > 0
), too_far AS (
    SELECT r.trace_id, count(*) AS n, any_value(r.c) AS c FROM new_refs r JOIN hb.ctx x ON x.ctx = r.owner
    WHERE r.n > x.events GROUP BY r.trace_id
), inconsistent AS (  -- the referenced event knew something the referring one does not
    SELECT r.trace_id, count(*) AS n, any_value(r.c) AS c
    FROM new_refs r
    JOIN hb.ev xk ON xk.ctx = r.owner AND xk.pos = r.n
    JOIN _refs xe ON xe.seq = xk.seq
    LEFT JOIN _cv ee ON ee.seq = r.seq AND ee.c = xe.c
    WHERE coalesce(ee.n, 0) < xe.n
    GROUP BY r.trace_id
)
SELECT t.trace_id, t.contexts, t.events,
    CASE
        WHEN nc.n IS NOT NULL THEN 'untrusted: ' || nc.n || ' event(s) carry no vector clock (e.g. ' || nc.example || ')'
        WHEN u.n IS NOT NULL THEN 'untrusted: context ' || u.example || (CASE WHEN u.n > 1 THEN ' and ' || (u.n - 1) || ' other(s)' ELSE '' END)
             || ' own no component that runs 1..N (a counter shared with other contexts, e.g. one per service instance)'
        WHEN sh.comp IS NOT NULL THEN 'untrusted: component ' || sh.comp || ' is advanced by several contexts ('
             || array_to_string(sh.owners, ', ') || ')'
        WHEN g.n IS NOT NULL THEN 'untrusted: component ' || g.c || ' decreases or disappears along a context'
        WHEN tf.n IS NOT NULL THEN 'untrusted: ' || tf.n || ' clock value(s) of ' || tf.c || ' refer to events that do not exist'
        WHEN ic.n IS NOT NULL THEN 'untrusted: ' || ic.n || ' event(s) learn ' || ic.c || ' without what its event knew'
    END AS problem
FROM traces t
LEFT JOIN no_clock nc USING (trace_id) LEFT JOIN unowned u USING (trace_id)
LEFT JOIN (SELECT DISTINCT ON (trace_id) * FROM shared ORDER BY trace_id, comp) sh USING (trace_id)
LEFT JOIN gaps g USING (trace_id) LEFT JOIN too_far tf USING (trace_id) LEFT JOIN inconsistent ic USING (trace_id)
"""

FINAL = """
CREATE OR REPLACE TABLE hb.trust AS
SELECT trace_id, contexts, events, problem IS NULL AS trusted,
       coalesce(problem, 'trusted: ' || contexts || ' context(s) each own a component that runs 1..N, '
                || 'and every clock value agrees with the event it names') AS reason
FROM hb.trust
"""

# For trusted traces: x_k -> e for each first-learned reference.
CLOCK_EDGES = """
SELECT xk.seq AS src, r.seq AS dst, 'clock' AS kind, r.c || '=' || r.n AS detail
FROM _refs r
JOIN hb.trust t ON t.trace_id = r.trace_id AND t.trusted
JOIN hb.ev xk ON xk.ctx = r.owner AND xk.pos = r.n
WHERE r.owner <> r.ctx AND (r.prev_n IS NULL OR r.n > r.prev_n) AND r.n > 0
"""


def judge(cur: duckdb.DuckDBPyConnection) -> str:
    """Fill hb.trust; return the SQL of the clock edges (for graph.build)."""
    for sql in (ENTRIES, OWNERS, CANDIDATES, REFS, VERDICTS, FINAL):
        cur.execute(sql).fetchall()
    return CLOCK_EDGES

"""The audit trail of a variable: every access in causal order.

Causal order is a linear extension of happens-before (ties by timestamp). For
each access: old -> new value, context, location, whether the previous access
happens-before it (computed by the engine), and whether it takes part in a race.
"""

from __future__ import annotations


def sql(match: str = "e.variable = $variable") -> str:
    """``match``: the condition on the variable (its name, or as a variable scope names it)."""
    return f"""
    SELECT e.seq, e.id AS event_id, e.trace_id, o.ctx, c.thread_id, e.service, e.access,
           e.old_value, e.new_value, e.location, e.timestamp, o.ord, l.locks,
           EXISTS (SELECT 1 FROM hb.race_pairs r WHERE r.first_seq = e.seq OR r.second_seq = e.seq) AS racing
    FROM events e JOIN hb.ev o USING (seq) JOIN hb.ctx c ON c.ctx = o.ctx
    LEFT JOIN hb.locksets l USING (seq)
    WHERE e.kind = 'StateChange' AND {match} __TRACE__
    ORDER BY o.ord
    """

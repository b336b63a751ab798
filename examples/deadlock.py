"""Transfers that lock the source account, then the destination: a lock-order inversion.

Two tellers move money between alice and bob in opposite directions. Each takes the
source account's lock, then the destination's. When both hold their first lock at the
same time, each waits for the other: a deadlock. Here the second acquire gives up
after a timeout (the teller releases, backs off and retries), so the program always
ends; how often it deadlocked depends on the schedule, and the printout says so.
Every run, deadlocked or not, holds the A/B inversion `raceway-tui analyze` reports.

A third teller moves money between carol and dave both ways too, but only while
holding the branch lock: that gate lock rules the deadlock out (not reported).

    python examples/deadlock.py              # -> the temp folder (make samples: sample_traces/)
"""

from __future__ import annotations

import random
import threading
import time

from _common import arguments, client, fresh

ROUNDS = 6
TIMEOUT = 0.02  # s: how long a teller waits for its second lock before backing off


class Bank:
    def __init__(self, raceway) -> None:
        self.raceway = raceway
        self.balances = {"alice": 1000, "bob": 1000, "carol": 1000, "dave": 1000}
        self.locks = {name: threading.Lock() for name in self.balances}
        self.branch = threading.Lock()
        self.timeouts = 0
        self.count = threading.Lock()  # guards self.timeouts (not traced: the example's own bookkeeping)

    def release(self, name: str) -> None:
        self.raceway.track_lock_release(f"account:{name}")
        self.locks[name].release()

    def move(self, src: str, dst: str, amount: int) -> None:
        old_src, old_dst = self.balances[src], self.balances[dst]
        self.balances[src], self.balances[dst] = old_src - amount, old_dst + amount
        self.raceway.track_state_change(f"{src}.balance", old_src, old_src - amount, "Write")
        self.raceway.track_state_change(f"{dst}.balance", old_dst, old_dst + amount, "Write")

    def transfer(self, src: str, dst: str, amount: int) -> None:
        """Lock src, then dst; on a timeout for dst (the other teller holds it and waits
        for src), let go of src, back off and try again."""
        self.raceway.track_function_call("transfer", {"from": src, "to": dst, "amount": amount})
        while True:
            self.locks[src].acquire()
            self.raceway.track_lock_acquire(f"account:{src}")
            time.sleep(random.uniform(0, 0.004))  # read the account, check limits...
            if self.locks[dst].acquire(timeout=TIMEOUT):
                self.raceway.track_lock_acquire(f"account:{dst}")
                self.move(src, dst, amount)
                self.release(dst)
                self.release(src)
                return
            self.release(src)
            with self.count:
                self.timeouts += 1
            self.raceway.track_function_call("deadlock_backoff", {"from": src, "to": dst})
            time.sleep(random.uniform(0, 0.01))

    def branch_transfer(self, src: str, dst: str, amount: int) -> None:
        """The same lock order problem, but under the branch lock: never deadlocks."""
        with self.raceway.tracked_lock(self.branch, "branch"):
            with self.raceway.tracked_lock(self.locks[src], f"account:{src}"):
                with self.raceway.tracked_lock(self.locks[dst], f"account:{dst}"):
                    self.move(src, dst, amount)

    def teller(self, src: str, dst: str) -> None:
        for _ in range(ROUNDS):
            self.transfer(src, dst, 10)
            time.sleep(random.uniform(0, 0.003))

    def branch_teller(self) -> None:
        for i in range(ROUNDS):
            src, dst = ("carol", "dave") if i % 2 == 0 else ("dave", "carol")
            self.branch_transfer(src, dst, 5)


def main() -> None:
    parser = arguments("deadlock-transfers", __doc__)
    args = parser.parse_args()
    raceway = client("bank", None if args.endpoint else fresh(args.out), args.endpoint)
    bank = Bank(raceway)
    with raceway.trace():
        workers = [raceway.spawn_thread(bank.teller, "alice", "bob", name="teller-1"),
                   raceway.spawn_thread(bank.teller, "bob", "alice", name="teller-2"),
                   raceway.spawn_thread(bank.branch_teller, name="teller-3"),
                   raceway.spawn_thread(bank.branch_teller, name="teller-4")]
        for w in workers:
            w.join()
    raceway.shutdown()
    print(f"{2 * ROUNDS} opposite transfers: deadlocked {bank.timeouts} time(s) (broken by a {TIMEOUT * 1000:.0f} ms "
          f"acquire timeout); balances {bank.balances}")
    if raceway.dropped_events:
        raise SystemExit(f"{raceway.dropped_events} events were dropped")


if __name__ == "__main__":
    main()

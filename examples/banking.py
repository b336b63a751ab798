"""Banking: two concurrent transfers out of one account.

Without a lock (default) both transfers read alice's balance of 1000, then
write 900 and 800: one withdrawal is lost (a lost update). With --locked the
read-modify-write runs under a lock and the balance ends at 700.

    python examples/banking.py                 # -> sample_traces/banking-unsafe.jsonl
    python examples/banking.py --locked        # -> sample_traces/banking-locked.jsonl
"""

from __future__ import annotations

import threading
import time

from _common import arguments, client, fresh, recorded

INITIAL = {"alice": 1000, "bob": 500, "charlie": 300}
TRANSFERS = [("alice", "bob", 100, 0.005), ("alice", "charlie", 200, 0.03)]  # (from, to, amount, processing s)


class Bank:
    def __init__(self, raceway, locked: bool) -> None:
        self.raceway = raceway
        self.balances: dict[str, int] = {}
        self.locks = {name: threading.Lock() for name in INITIAL} if locked else None
        # Both unlocked transfers read before either writes, every run: the barrier
        # only makes the recording deterministic, the bug is the missing lock.
        self.both_read = threading.Barrier(len(TRANSFERS), timeout=5)

    def open_accounts(self) -> None:
        for name, amount in INITIAL.items():
            self.balances[name] = amount
            self.raceway.track_state_change(f"{name}.balance", None, amount, "Write")

    def read(self, name: str) -> int:
        value = self.balances[name]
        self.raceway.track_state_change(f"{name}.balance", None, value, "Read")
        return value

    def write(self, name: str, old: int, new: int) -> None:
        self.balances[name] = new
        self.raceway.track_state_change(f"{name}.balance", old, new, "Write")

    def withdraw(self, name: str, amount: int, processing: float) -> None:
        balance = self.read(name)
        if self.locks is None:
            self.both_read.wait()
        time.sleep(processing)  # fraud checks, ledger I/O...
        self.write(name, balance, balance - amount)

    def transfer(self, src: str, dst: str, amount: int, processing: float) -> None:
        self.raceway.track_function_call("transfer", {"from": src, "to": dst, "amount": amount})
        if self.locks is None:
            self.withdraw(src, amount, processing)
        else:
            with self.raceway.tracked_lock(self.locks[src], f"account:{src}"):
                self.withdraw(src, amount, processing)
        credited = self.read(dst)
        self.write(dst, credited, credited + amount)

    def audit(self) -> None:
        expected = INITIAL["alice"] - sum(a for src, _, a, _ in TRANSFERS if src == "alice")
        actual = self.read("alice")
        for name in ("bob", "charlie"):
            self.read(name)
        self.raceway.track_function_call("audit", {"account": "alice", "expected": expected, "actual": actual,
                                                   "ok": expected == actual})
        print(f"alice: expected {expected}, got {actual}" + ("" if expected == actual else "  <- lost update"))


def main() -> None:
    parser = arguments("banking-unsafe", __doc__)
    parser.add_argument("--locked", action="store_true", help="protect each account with a lock")
    args = parser.parse_args()
    if args.locked and parser.get_default("out") == args.out:
        args.out = args.out.with_name("banking-locked.jsonl")
    raceway = client("banking", None if args.endpoint else fresh(args.out), args.endpoint)
    bank = Bank(raceway, args.locked)
    with raceway.trace():
        bank.open_accounts()
        workers = [raceway.spawn_thread(bank.transfer, *t, name=f"transfer-{t[1]}") for t in TRANSFERS]
        for w in workers:
            w.join()
        bank.audit()
    raceway.shutdown()
    if raceway.dropped_events:
        raise SystemExit(f"{raceway.dropped_events} events were dropped")
    recorded(args.out, args.endpoint)


if __name__ == "__main__":
    main()

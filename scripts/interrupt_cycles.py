"""Open, use and close a Session N times with a SIGINT at a random moment of each cycle;
then check that nothing is left: no fd, no tracefs instance, no probe entry (programs and
links live only as long as their fds: no fd left means none of them is left either).

    python3 scripts/interrupt_cycles.py 1000 [OBJECT]      # as root; prints a JSON summary

Exit status 0 if nothing leaked.  tests/kernel/test_interrupts.py runs a few cycles of it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello" / "hello.o"


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def cycles(n: int, obj: Path = HELLO, seed: int = 1) -> dict[str, object]:
    from bpfkit.kernel import tracefs
    from bpfkit.kernel.session import Session
    from bpfkit.obj.reader import read_object

    # A parent may have left SIGINT ignored (pytest-xdist workers do), and Python then
    # installs no handler of its own: Ctrl-C must raise KeyboardInterrupt here.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    spec = read_object(str(obj))
    rng = random.Random(seed)
    with Session(spec):  # warm up (imports, tracefs mount) and measure one cycle
        pass
    t0 = time.monotonic()
    with Session(spec) as s:
        dict(s.maps)
    cycle = time.monotonic() - t0
    before = _fds()
    interrupted = completed = 0
    pid = os.getpid()
    for _ in range(n):
        delay = rng.uniform(0, cycle * 1.2)
        timer = threading.Timer(delay, os.kill, (pid, signal.SIGINT))
        try:
            try:
                # A short delay fires while start() still waits for the thread to run:
                # that interrupt belongs to this cycle too.
                timer.start()
                with Session(spec) as s:
                    dict(s.maps)
                    time.sleep(cycle * 0.1)
                completed += 1
            finally:
                timer.cancel()
                if timer.ident is not None:
                    timer.join()
        except KeyboardInterrupt:
            interrupted += 1
        # A SIGINT the timer sent just as the cycle ended lands here, between cycles.
        try:
            time.sleep(0)
        except KeyboardInterrupt:
            interrupted += 1
    leaked_fds = sorted(_fds() - before)
    instances = [i for i in tracefs.instances() if i.startswith(f"{tracefs.GROUP}-{pid}-")]
    probes = [e for e in tracefs.probe_entries() if f"_{pid}_" in e]
    return {
        "cycles": n,
        "interrupted": interrupted,
        "completed": completed,
        "cycle_seconds": round(cycle, 4),
        "leaked_fds": leaked_fds,
        "leaked_instances": instances,
        "leaked_probe_entries": probes,
    }


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    obj = Path(sys.argv[2]) if len(sys.argv) > 2 else HELLO
    result = cycles(n, obj)
    print(json.dumps(result))
    leaked = result["leaked_fds"] or result["leaked_instances"] or result["leaked_probe_entries"]
    return 1 if leaked else 0


if __name__ == "__main__":
    sys.exit(main())

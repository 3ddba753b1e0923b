"""Start N worker processes for the user, torchrun-style, and wait for them: `helios generate --gpus N`.

Each worker is a fresh interpreter (the spawn start method: CUDA cannot run in forked children) that gets the same
environment torchrun would give it (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and then calls
`target(payload)`; its return value is the worker's exit code. `target` and `payload` must be picklable
(a module-level function and plain data).

Why by hand and not `torch.multiprocessing.spawn`: spawn turns any non-zero exit into an exception and loses the
code, and our workers use codes to say "an item failed" (1) or "interrupted" (130). Like torchrun, when one worker
dies the others are stopped: they would otherwise wait forever in a collective for the rank that is gone.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from helios_core.distributed.world import ENV_LOCAL_RANK, ENV_RANK, ENV_WORLD_SIZE

EXIT_CRASHED = 70  # a worker raised (its traceback is on stderr)
EXIT_INTERRUPTED = 130
STOP_GRACE_SECONDS = 30.0  # a failed rank's peers get this long to finish on their own before they are stopped


def free_port() -> int:
    """A TCP port nobody listens on now, for the rendezvous on this host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch_workers(target: Callable[[Any], int], payload: Any, world_size: int) -> list[int]:
    """Run `target(payload)` in `world_size` ranks on this host; return their exit codes in rank order.

    Ctrl-C reaches the workers directly (same terminal process group); here it only stops the waiting, then the
    workers are waited for so they can close their files.
    """
    context = multiprocessing.get_context("spawn")
    port = free_port()
    processes = [
        context.Process(target=_worker_entry, args=(target, payload, rank, world_size, port), name=f"helios-rank{rank}")
        for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    try:
        _wait_all(processes)
    except KeyboardInterrupt:
        for process in processes:
            process.join(STOP_GRACE_SECONDS)
        _stop(processes)
        raise
    return [process.exitcode if process.exitcode is not None else 1 for process in processes]


def _wait_all(processes: list[multiprocessing.Process]) -> None:
    running = list(processes)
    while running:
        multiprocessing.connection.wait([p.sentinel for p in running])
        running = [p for p in running if p.is_alive()]
        if running and any(p.exitcode not in (None, 0) for p in processes):
            # Ranks finish together (their last step is a collective), so one that ended with an error while
            # others still run has left them waiting for it: give them a grace period, then stop them.
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for process in running:
                process.join(max(0.0, deadline - time.monotonic()))
            _stop(running)
            running = []


def _stop(processes: list[multiprocessing.Process]) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join()


def _worker_entry(target: Callable[[Any], int], payload: Any, rank: int, world_size: int, port: int) -> None:
    os.environ.update({
        ENV_RANK: str(rank), ENV_WORLD_SIZE: str(world_size), ENV_LOCAL_RANK: str(rank),
        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
    })
    try:
        code = int(target(payload) or 0)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except Exception:  # noqa: BLE001 - a crashed rank must still exit non-zero so the launcher stops its peers
        traceback.print_exc()
        code = EXIT_CRASHED
    sys.exit(code)

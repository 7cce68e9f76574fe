"""Run a function on `world_size` CPU processes joined in one torch.distributed process group (gloo), and clean up.

The parent holds the rendezvous store, a TCPStore on a port the operating system picks (port 0), so two
runs never race for a free port. On Linux the ranks are forked: they share the parent's memory (torch,
the data) until they write to it. Elsewhere they are spawned, and each imports torch again: the worker
must then be an importable function (one defined in a notebook cell cannot be pickled), and tensors in
`arguments` that are in shared memory (`tensor.share_memory_()`) reach the ranks as a handle, not as a
copy each. Each rank sends its result back through a queue. The first rank that raises or dies, or the
time limit, stops them all; the error comes back as one line, and every process is joined whatever happened."""

import contextlib
import gc
import io
import queue
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing

from bnlib.checks import check_choice, check_integer, check_number

BACKEND = "gloo"  # the torch.distributed backend that runs collectives on CPU tensors
HOST = "127.0.0.1"  # the ranks talk over the loopback interface only
TIMEOUT_S = 900.0  # a safety net against a hung rank: four ranks on a busy 2-core machine need minutes
START_METHODS = ("fork", "spawn")  # how run_on_ranks may start the ranks (None: default_start_method())
EXIT_GRACE_S = 10.0  # how long a rank that returned its result may take to exit before it is terminated


class RankFailed(RuntimeError):
    """A rank raised, died or ran past the time limit; the message is one line ("rank 1 failed: ValueError: ...")."""


def one_line(error):
    """"ValueError: first line of the message": how a rank's exception travels back."""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0] if message else ''}".rstrip(": ")


def default_start_method():
    """"fork" on Linux while this process has not started CUDA, else "spawn".

    Forked ranks share the parent's memory (torch's libraries, the data) until they write to it, where each spawned
    rank imports torch again: about 400-600 MB more per rank with the CUDA build. macOS and Windows spawn (forking a
    process with threads is unsafe there, or impossible), and so does a process that has started CUDA.
    """
    return "fork" if sys.platform.startswith("linux") and not torch.cuda.is_initialized() else "spawn"


def run_on_ranks(worker, arguments, *, world_size, timeout_s=TIMEOUT_S, start_method=None):
    """[worker(rank, world_size, **arguments) for every rank], each run in its own process inside one process group.

    A result must be tensors, numbers, strings and containers of them (it travels as a `torch.save` payload).
    Raises RankFailed when a rank raises or dies, or when the ranks take longer than `timeout_s` seconds.
    `start_method` is "fork" or "spawn" (None: `default_start_method()`).
    """
    check_integer("world_size", world_size, minimum=1)
    check_choice("start_method", start_method, (None, *START_METHODS))
    timeout_s = check_number("timeout_s", timeout_s, 0, None, low_open=True)
    context = torch.multiprocessing.get_context(start_method or default_start_method())
    store = dist.TCPStore(HOST, 0, world_size, is_master=True, wait_for_workers=False,
                          timeout=timedelta(seconds=timeout_s))  # fmt: skip
    results, payloads = context.Queue(), None
    processes = [context.Process(target=_run_rank, daemon=True,
                                 args=(rank, world_size, store.port, timeout_s, worker, arguments, results))
                 for rank in range(world_size)]  # fmt: skip
    try:
        with frozen_garbage_collector():
            for process in processes:
                process.start()
        payloads = _collect(processes, results, timeout_s)
    finally:
        _stop(processes, grace_s=EXIT_GRACE_S if payloads is not None else 0.0)  # after an error, stop them at once
        results.close()
    return [torch.load(io.BytesIO(payloads[rank]), weights_only=True) for rank in range(world_size)]


@contextlib.contextmanager
def frozen_garbage_collector():
    """The parent's objects moved out of the collector's reach while ranks start: a forked rank's collector then
    never writes to them, so their pages stay shared with the parent instead of being copied into every rank."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _collect(processes, results, timeout_s):
    """{rank: payload} once every rank has answered; RankFailed at the first error, death or the time limit."""
    deadline, payloads = time.monotonic() + timeout_s, {}
    while len(payloads) < len(processes):
        try:
            rank, error, payload = results.get(timeout=min(0.2, max(deadline - time.monotonic(), 0.01)))
        except queue.Empty:
            _check_alive(processes, results, payloads)
            if time.monotonic() > deadline:
                raise RankFailed(f"the {len(processes)} ranks timed out after {timeout_s:g} s "
                                 f"({len(payloads)} had answered)") from None  # fmt: skip
            continue
        if error is not None:
            raise RankFailed(f"rank {rank} failed: {error}")
        payloads[rank] = payload
    return payloads


def _check_alive(processes, results, payloads):
    """RankFailed when a rank exited without answering (its answer, if any, is read from the queue first)."""
    for rank, process in enumerate(processes):
        if rank not in payloads and process.exitcode is not None:
            try:  # a rank that answered and exited has its answer in the pipe already
                answer_rank, error, payload = results.get(timeout=1.0)
            except queue.Empty:
                raise RankFailed(f"rank {rank} exited with code {process.exitcode} without a result") from None
            if error is not None:
                raise RankFailed(f"rank {answer_rank} failed: {error}")
            payloads[answer_rank] = payload


def _stop(processes, grace_s):
    """Join every started process: `grace_s` seconds to exit by itself, then SIGTERM, then SIGKILL."""
    started = [process for process in processes if process.pid is not None]
    deadline = time.monotonic() + grace_s
    for process in started:
        process.join(timeout=max(deadline - time.monotonic(), 0.0))
    for process in started:
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()


def _run_rank(rank, world_size, port, timeout_s, worker, arguments, results):
    """One rank: join the group, run the worker, send (rank, None, payload) or (rank, "Type: message", None)."""
    torch.set_num_threads(1)  # the ranks share the machine's cores
    try:
        store = dist.TCPStore(HOST, port, world_size, is_master=False, timeout=timedelta(seconds=timeout_s))
        dist.init_process_group(BACKEND, store=store, rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=timeout_s))  # fmt: skip
        buffer = io.BytesIO()
        torch.save(worker(rank, world_size, **arguments), buffer)
        results.put((rank, None, buffer.getvalue()))
    except Exception as error:
        results.put((rank, one_line(error), None))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()

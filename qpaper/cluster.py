"""Dask distributed under ``qpaper estimate`` and ``qpaper dataset build`` (issue 23).

``--scheduler ADDRESS`` uses a running cluster (``tcp://host:8786``: dask-jobqueue on an HPC
system, the Dask Kubernetes operator, or ``dask scheduler`` and ``dask worker`` by hand);
``--scheduler local:N`` starts N worker processes on this machine, sharing its cores. Dask is the
optional extra ``qpaper[cluster]``: only this module imports it, and only when a scheduler is asked for.

Workers open the files, the models and the image sources at the paths this process names, so on a
real cluster they share its filesystem (the same checkout, data and ``models/``), as HPC workers
do. The tasks live beside what they run (:mod:`qpaper.batch`, :mod:`qpaper.shards`): a worker
process keeps what it loaded (models, image sources) in their module for its next tasks.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from .paths import error_line

INSTALL = "pip install 'qpaper[cluster]'"
PER_WORKER = 2  # tasks in flight per worker thread: enough to keep it busy, few to lose when stopped


def require():
    """``distributed``, or one line saying what to install."""
    try:
        import distributed
    except ImportError:
        raise ValueError(f"--scheduler needs Dask distributed, which is not installed here: {INSTALL}") from None
    return distributed


@contextmanager
def client(scheduler: str):
    """A ``distributed.Client`` on ``scheduler`` (an address, or ``local:N`` for N worker processes
    here, each with one task at a time and cores / N backend threads, closed afterwards); one line
    when Dask is missing or the scheduler cannot be reached."""
    import logging

    distributed = require()

    import dask
    cluster = None
    if scheduler.startswith("local:"):
        n = scheduler[len("local:"):]
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"--scheduler {scheduler}: local:N takes N >= 1 worker processes")
        cores = str(max(1, (os.cpu_count() or 1) // int(n)))  # this machine's cores shared among the workers
        env = {"TF_NUM_INTRAOP_THREADS": cores, "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": cores,
               **{k: v for k, v in os.environ.items() if k.startswith(("QPAPER_", "TF_CPP", "KERAS_"))}}
        cluster = distributed.LocalCluster(n_workers=int(n), threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.ERROR, env=env)
        c = distributed.Client(cluster)
    else:
        c = _connect(distributed, scheduler, dask.utils.parse_timedelta(
            dask.config.get("distributed.comm.timeouts.connect")))
    try:
        yield c
    finally:
        c.close()
        if cluster is not None:
            cluster.close()


def _connect(distributed, scheduler: str, timeout: float):
    """``distributed.Client(scheduler)`` within Dask's connect timeout (30 s;
    DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT sets another), the handshake included: a server
    that accepts the connection and never answers is one line, not a hang (issue 32, item 6)."""
    import threading
    box = {}

    def connect():
        try:
            box["client"] = distributed.Client(scheduler, timeout=timeout)
        except BaseException as e:  # handed to the caller
            box["error"] = e

    t = threading.Thread(target=connect, daemon=True, name="qpaper-dask-connect")
    t.start()
    t.join(timeout + 5)
    if t.is_alive():
        raise ValueError(f"the Dask scheduler at {scheduler} did not answer within {timeout:g} s (something listens "
                         "there, but not a Dask scheduler that answers)")
    e = box.get("error")
    if isinstance(e, (OSError, TimeoutError, ValueError, TypeError)):
        raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {error_line(e)}") from None
    if e is not None:
        raise e
    return box["client"]


def _threads(c) -> int:
    return max(1, sum(c.nthreads().values()))


def as_finished(c, fn, jobs, *args):
    """(job, future) as each finishes, ``fn(*job, *args)`` submitted for the jobs in order with a
    bounded number in flight (PER_WORKER a worker thread: a cluster that grows gets more)."""
    from distributed import as_completed
    jobs = iter(jobs)
    running = as_completed()
    job_of = {}

    def submit(n):
        for _ in range(n):
            job = next(jobs, None)
            if job is None:
                return
            f = c.submit(fn, *job, *args, pure=False)
            job_of[f.key] = job
            running.add(f)

    submit(PER_WORKER * _threads(c))
    for f in running:
        yield job_of.pop(f.key), f
        submit(max(0, PER_WORKER * _threads(c) - running.count()))

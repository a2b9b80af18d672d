"""Fit several plugins at once, each in its own process on one CPU thread.

A plugin's flow is small, so its training is a long chain of small matrix products that a second
CPU thread barely speeds up (with the same weights to the last bit). The main job fits PluGeN and FPN on the same latents; on a
2-core machine, fitting them side by side, one core each, takes about as long as the slower of the
two instead of their sum.

>>> with SideBySide(workers=2) as pool:                                   # doctest: +SKIP
...     fitted = pool.fit({"PluGeN": PluGeN(labels), "FPN": FPN(labels)}, Z, Y)

The workers start when the pool is made (forked on Linux, spawned elsewhere; see
``_start_method``) and compute on one thread, so each fit gives exactly the plugin that
``plugin.fit(Z, Y)`` gives here under ``torch.set_num_threads(1)`` (with more threads here, sums may
run in another order: on MNIST the main job's PluGeN lands on a slightly different flow). The parent
shows one progress bar for all fits. An error in a fit is raised here, and the plugins passed in are
never modified: ``fit`` returns fitted copies.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait

import torch
from tqdm.auto import tqdm

from plugen.errors import InputError
from plugen.plugins.base import Plugin

_progress_queue = None  # the worker's end of the pool's progress queue


def _start_worker(progress_queue) -> None:
    global _progress_queue
    torch.set_num_threads(1)
    _progress_queue = progress_queue


def _ready() -> None:
    """A no-op task: submitting one per worker starts them all at once."""


def _fit_one(fit_id: int, name: str, plugin: Plugin, Z, Y, fit_options: dict) -> tuple[Plugin, float]:
    shown = plugin.progress
    plugin.progress = False  # the parent draws the bar

    def report(epoch: int, stats: dict) -> None:
        _progress_queue.put((fit_id, name))

    start = time.perf_counter()
    plugin.fit(Z, Y, on_epoch=report, **fit_options)
    plugin.progress = shown
    return plugin, time.perf_counter() - start


class SideBySide:
    """A pool of ``workers`` processes, one CPU thread each, that fit plugins concurrently.

    With ``workers`` <= 1 nothing is started and :meth:`fit` fits the plugins one after the other
    in this process.
    """

    def __init__(self, workers: int | None = None):
        if workers is not None and not (isinstance(workers, int) and workers >= 1):
            raise InputError(f"workers must be a whole number >= 1, got {workers!r}")
        self.workers = min(2, os.cpu_count() or 1) if workers is None else workers
        self._executor, self._fits = None, 0
        if self.workers > 1:
            context = mp.get_context(_start_method())
            self._queue = context.Queue()
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_start_worker, initargs=(self._queue,)
            )
            for _ in range(self.workers):
                self._executor.submit(_ready)

    def fit(self, plugins: Mapping[str, Plugin], Z, Y, **fit_options) -> dict[str, Plugin]:
        """Fit every plugin on the same ``Z``, ``Y``; returns ``{name: fitted copy}`` in the order
        given and records each fit's wall time, in seconds, in ``self.seconds``. ``fit_options``
        go to every ``fit`` (e.g. ``groups``). The bar shows while any plugin has ``progress``."""
        if "on_epoch" in fit_options:
            raise InputError("on_epoch cannot run in the worker processes; fit the plugin itself to use it")
        self.seconds: dict[str, float] = {}
        if self._executor is None:
            fitted = {}
            for name, plugin in plugins.items():
                start = time.perf_counter()
                fitted[name] = _copy(plugin).fit(Z, Y, **fit_options)
                self.seconds[name] = time.perf_counter() - start
            return fitted
        self._fits += 1
        jobs = {
            self._executor.submit(_fit_one, self._fits, name, plugin, Z, Y, fit_options): name
            for name, plugin in plugins.items()
        }
        self._wait(plugins, jobs, any(p.progress for p in plugins.values()))
        for job in jobs:  # the first error, not a cancellation it caused
            if job.done() and not job.cancelled() and job.exception() is not None:
                raise job.exception()
        fitted = {}
        for job, name in jobs.items():
            fitted[name], self.seconds[name] = job.result()
        return {name: fitted[name] for name in plugins}

    def _wait(self, plugins: Mapping[str, Plugin], jobs: dict[Future, str], progress: bool) -> None:
        """Wait for the jobs, drawing one bar over all their epochs; stop at the first error."""
        budget = {name: p.max_epochs * p.restarts for name, p in plugins.items()}
        epochs, status = dict.fromkeys(plugins, 0), dict.fromkeys(plugins, "")
        bar = tqdm(
            total=sum(budget.values()),
            unit="epoch",
            leave=False,
            desc="fit " + " + ".join(plugins),
            disable=not progress,
        )
        pending = set(jobs)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            for fit_id, name in self._messages():
                if fit_id == self._fits and epochs[name] < budget[name]:
                    epochs[name] += 1
                    bar.update(1)
                    status[name] = f"epoch {epochs[name]}"
            for job in done:
                if job.exception() is not None:
                    for other in pending:
                        other.cancel()
                    bar.close()
                    return
                name = jobs[job]  # stopped early: its bar share is complete
                bar.update(budget[name] - epochs[name])
                epochs[name], status[name] = budget[name], "done"
            bar.set_postfix_str(", ".join(f"{name} {s}" for name, s in status.items() if s), refresh=False)
        bar.close()

    def _messages(self):
        while True:
            try:
                yield self._queue.get_nowait()
            except queue.Empty:
                return

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> SideBySide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _start_method() -> str:
    """``fork`` on Linux (fast, no re-import, and no ``if __name__ == "__main__"`` needed in the
    caller's script; the workers run one thread, as PyTorch's DataLoader workers do, which keeps
    fork safe), unless CUDA is already initialised here, which a forked child cannot use."""
    return "fork" if sys.platform == "linux" and not torch.cuda.is_initialized() else "spawn"


def _copy(plugin: Plugin) -> Plugin:
    """An unfitted plugin with ``plugin``'s hyperparameters."""
    return type(plugin)(**plugin.get_params())

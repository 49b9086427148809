"""Sweep runs as Ray tasks: ``relgraph sweep --backend ray`` (needs ``pip install 'timm-relgraph[ray]'``).

Each (graph, seed) of a sweep is one Ray task, :func:`relgraph_sweep_run`, that trains the run with the
project's trainer (``timm_relgraph.sweep._run_one``) and returns its results row. The driver (the
``relgraph sweep`` process) submits the tasks, waits for them as they finish and records every row itself, so the
results table has one writer, every run appears in it once, and a sweep whose driver died resumes by running the
same command again: finished runs are skipped, a run that was part-trained resumes from its last checkpoint.

* Cluster: ``--address`` (``host:port`` of the head, or ``ray://host:10001`` for Ray Client), else
  ``RAY_ADDRESS``, else a new Ray instance on this machine (stopped at the end).
* Resources: each task asks for ``--cpus-per-run`` CPUs (its torch thread count) and ``--gpus-per-run`` GPUs
  (Ray sets ``CUDA_VISIBLE_DEVICES``; the trainer uses CUDA when it sees a GPU).
* Failures: a task whose worker process or node dies is retried up to ``--max-retries`` times (Ray's
  ``max_retries``, system failures only); an exception raised by the training itself (a bug, a bad config) is
  not retried: the run is reported as failed, the other runs go on, and the sweep exits with an error.
* Storage: a retried run resumes from the checkpoint in its run folder, so the runs folder should be on storage
  every node sees (NFS, a cluster file system); the recipe's content travels with each task, the dataset must be
  at the same path on every node.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, Dict, List, Optional

import yaml

__all__ = ['relgraph_sweep_run', 'run_jobs', 'connect', 'RunsFailed']


class RunsFailed(RuntimeError):
    """Some runs of a sweep raised an error (the finished runs are in the table; re-running retries the rest)."""


def _ray():
    try:
        import ray
    except ImportError:
        raise ImportError("--backend ray needs Ray: pip install 'timm-relgraph[ray]' (or 'ray[default]')") from None
    return ray


def relgraph_sweep_run(job: Dict[str, Any]) -> Dict[str, Any]:
    """One run of a sweep, executed by a Ray worker (plain function; :func:`run_jobs` makes it a task)."""
    from .sweep import _run_one
    return _run_one(job)


def connect(address: Optional[str] = None) -> bool:
    """Connect to the Ray cluster at ``address`` (or ``RAY_ADDRESS``), or start a local instance when neither is
    given. Returns True when this call started Ray (and the caller should shut it down)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    address = address or os.environ.get('RAY_ADDRESS') or None
    if address:
        ray.init(address=address, log_to_driver=True)
    else:  # never attach silently to a cluster found on this machine: only the one asked for
        ray.init(address='local', include_dashboard=False)
    return True


def run_jobs(payloads: List[Dict[str, Any]], jobs: List[Dict[str, Any]],
             record: Callable[[Dict[str, Any], Dict[str, Any]], None], address: Optional[str] = None,
             cpus_per_run: float = 1, gpus_per_run: float = 0, max_retries: int = 3) -> None:
    """Submit one task per payload and ``record(job, result)`` in the driver as each finishes."""
    ray = _ray()
    if not payloads:
        return
    started = connect(address)
    try:
        with open(payloads[0]['config']) as f:
            config_data = yaml.safe_load(f) or {}
        task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=max_retries,
                          retry_exceptions=False)(relgraph_sweep_run)
        pending = {}
        for payload, job in zip(payloads, jobs):
            body = dict(payload, config_data=config_data) if not payload.get('train_py') else payload
            pending[task.options(name=f"relgraph_sweep_run:{job['run_id']}").remote(body)] = job
        resources = ray.cluster_resources()
        where = getattr(ray.get_runtime_context(), 'gcs_address', None) or address or 'a local Ray instance'
        print(f"ray: {len(pending)} runs submitted to {where} "
              f"({resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs; "
              f"{cpus_per_run:g} CPUs, {gpus_per_run:g} GPUs a run)", flush=True)
        failures = []
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as err:  # the run raised, or its retries are spent
                    failures.append((job['run_id'], err))
                    print(f"run {job['run_id']} failed: {str(err).splitlines()[0] if str(err) else type(err).__name__}",
                          file=sys.stderr, flush=True)
                    continue
                record(job, result)
        if failures:
            first_id, first = failures[0]
            raise RunsFailed(f'{len(failures)} of {len(jobs)} runs failed (the others are recorded; run the '
                             f'sweep again to retry): {", ".join(r for r, _ in failures)}\nfirst error ({first_id}):\n'
                             f'{first}')
    finally:
        if started:
            ray.shutdown()

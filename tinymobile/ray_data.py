"""Classify a Ray Data dataset on a pool of actors (``pip install 'tinymobile[ray]'``).

    import ray, tinymobile.ray_data as trd
    ds = ray.data.from_items([{"path": p} for p in paths])      # or ray.data.read_images(...)
    ds = trd.classify(ds, "mobilenet_v1_0.5_160.npz", column="path", top=5)
    ds.take(1)   # [{"path": ..., "label": ..., "probability": ..., "top_labels": [...], ...}]

Each actor loads the model once and runs tinymobile's pipeline on its batches (decoding in
worker threads ahead of inference) with as many threads as Ray gives it CPUs. The answers are
exactly those of ``Model.classify`` on each image. :class:`Classifier` is the callable class, for
your own ``map_batches`` pipelines. An image that cannot be read fails the job with an
:class:`~tinymobile.errors.ImageError` naming it (never a row with a made-up answer).

Everything Ray-specific is imported lazily: this module imports without Ray installed.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Union

import numpy as np

from .errors import ImageError, InputError, TinyMobileError

ModelSpec = Union[str, "os.PathLike[str]", Any]  # a model file, or a (picklable) Model


def _load(model: ModelSpec, threads: int):
    """A Model with ``threads`` threads: loaded from a model file path, or the given Model
    (unpickled on the actor, which rebuilt its C state) rebuilt for that thread count."""
    from .model import Model, load
    if isinstance(model, (str, os.PathLike)):
        return load(model, threads=threads)
    if model.threads != threads:
        return Model(model.network, threads=threads)
    return model


def _assigned_cpus() -> int:
    """CPUs Ray reserved for this actor (1 outside Ray, or when it cannot tell)."""
    try:
        import ray
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # noqa: BLE001 — not inside a Ray worker
        cpus = None
    return max(1, int(cpus)) if cpus else 1


class Classifier:
    """A callable class for ``Dataset.map_batches``: adds ``label`` (str) and ``probability``
    (float32) columns, and ``top_labels`` / ``top_probabilities`` (lists of ``top``) when
    top > 1.

    model: a model file path (loaded once per actor) or a Model (pickled to the actors).
    column: a column of image file paths, or of images ((H, W, 3) uint8 arrays, as
    ``ray.data.read_images`` makes them). threads: the model's threads and decoding workers
    (default: the CPUs Ray assigned to the actor, ``num_cpus``)."""

    def __init__(self, model: ModelSpec, column: str = "path", top: int = 1,
                 threads: Optional[int] = None, batch: Optional[int] = None,
                 fast_decode: bool = False):
        if int(top) < 1:
            raise InputError(f"top must be at least 1, got {top}")
        self.threads = int(threads) if threads else _assigned_cpus()
        self.model = _load(model, self.threads)
        if self.model.num_classes == 0:
            raise TinyMobileError("this model is a feature extractor (no classifier): nothing to classify")
        self.column, self.top, self.batch, self.fast_decode = column, int(top), batch, fast_decode
        self.labels = np.array(self.model.labels, dtype=object)

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        from . import pipeline
        if self.column not in batch:
            raise InputError(f"the dataset has no column {self.column!r} (columns: "
                             f"{', '.join(batch)})")
        items = [x.item() if isinstance(x, np.generic) else x for x in batch[self.column]]
        n = len(items)
        probs = np.empty((n, len(self.labels)), np.float32)
        for r in pipeline.run(self.model, items, batch=self.batch, jobs=self.threads,
                              fast_decode=self.fast_decode):
            if r.error is not None:
                raise ImageError(r.error)
            probs[r.index] = self.model.probabilities(r.logits[None])[0]
        top = min(self.top, probs.shape[1])
        order = np.argsort(-probs, axis=1, kind="stable")[:, :top]
        best = np.take_along_axis(probs, order, axis=1)
        out = dict(batch)
        out["label"] = self.labels[order[:, 0]].astype(str)
        out["probability"] = best[:, 0].copy()
        if self.top > 1:
            out["top_labels"] = np.array([list(self.labels[o]) for o in order] + [None],
                                         dtype=object)[:-1]
            out["top_probabilities"] = np.array([list(map(float, b)) for b in best] + [None],
                                                dtype=object)[:-1]
        return out


def reads_files(ds) -> bool:
    """Whether the dataset's plan reads files in Ray tasks (``ray.data.read_images`` and the
    other ``read_*``), which need a CPU each while the actors hold theirs. False where Ray does
    not say (its logical plan is not public API)."""
    try:
        ops = ds._logical_plan.dag.post_order_iter()
        return any(type(op).__name__.startswith("Read") for op in ops)
    except Exception:  # noqa: BLE001 — another Ray version: no check, as before
        return False


def pool_plan(cpus: int, actors: Optional[int], threads_per_actor: Optional[int],
              reads: bool) -> "tuple[tuple[int, int], int]":
    """((min, max) actors, threads per actor) for ``classify`` on a cluster of ``cpus`` CPUs.

    Defaults: one thread per actor and a pool growing to one actor per CPU; with ``actors``, the
    actors share the CPUs. Where the dataset ``reads`` files, one CPU is left to Ray's read tasks
    (an actor pool holding every CPU left them none: the job waited forever); a pool that
    cannot leave one is an InputError."""
    if actors is not None and int(actors) < 1:
        raise InputError(f"actors must be at least 1, got {actors}")
    if threads_per_actor is not None and int(threads_per_actor) < 1:
        raise InputError(f"threads_per_actor must be at least 1, got {threads_per_actor}")
    free = cpus - 1 if reads else cpus  # CPUs the actors may hold
    if threads_per_actor is None:
        threads = 1 if actors is None else max(1, free // int(actors))
    else:
        threads = int(threads_per_actor)
    if actors is None:
        low, high = 1, max(1, free // threads)
    else:
        low = high = int(actors)
    if reads and low * threads > free:
        raise InputError(f"{low} actor{'s' if low > 1 else ''} x {threads} thread"
                         f"{'s' if threads > 1 else ''} hold {low * threads} of the cluster's "
                         f"{cpus} CPUs, leaving none to the dataset's read tasks "
                         "(ray.data.read_images): Ray would wait forever; use fewer actors or "
                         "threads_per_actor")
    return (low, high), threads


def classify(ds, model: ModelSpec, column: str = "path", top: int = 1, batch_size: int = 64,
             actors: Optional[int] = None, threads_per_actor: Optional[int] = None,
             fast_decode: bool = False):
    """``ds`` with ``label`` and ``probability`` columns added (and ``top_labels`` /
    ``top_probabilities`` when top > 1), classified on an actor pool.

    actors: a fixed pool size; threads_per_actor: CPUs reserved per actor (the model's threads
    and decode workers). Defaults: one thread per actor, and a pool that grows from one actor to
    one per cluster CPU as Ray has CPUs free; with ``actors`` set (and no threads_per_actor),
    the actors share the cluster's CPUs. A dataset made by ``ray.data.read_images`` needs CPUs
    for Ray's read tasks too: there the defaults leave one CPU free, and a pool that would take
    every CPU (Ray would wait forever) is an InputError (:func:`pool_plan`)."""
    import ray

    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    (low, high), threads_per_actor = pool_plan(cpus, actors, threads_per_actor, reads_files(ds))
    pool = ray.data.ActorPoolStrategy(min_size=low, max_size=high)
    if isinstance(model, (str, os.PathLike)):
        model = os.path.abspath(os.fspath(model))  # actors may run in another directory
    return ds.map_batches(
        Classifier, batch_size=batch_size, batch_format="numpy",
        fn_constructor_kwargs={"model": model, "column": column, "top": top,
                               "threads": int(threads_per_actor), "fast_decode": fast_decode},
        compute=pool, num_cpus=int(threads_per_actor))

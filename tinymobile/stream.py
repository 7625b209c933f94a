"""Live sources (a camera, a video): classify the newest frame, drop the stale ones.

    from tinymobile.stream import classify_latest
    for r in classify_latest(model, camera_frames(), top=3):
        print(r.name, r.top, f"{r.dropped} frames dropped")

A background thread reads the source as fast as it delivers and keeps only the newest frame, so
a source faster than inference never builds a backlog: each result is for the newest frame at
the moment the model became free, and memory holds one waiting frame whatever the rates.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Iterable, Iterator, List, NamedTuple, Optional, Tuple


class Frame(NamedTuple):
    seq: int            #: position in the source, from 0
    name: Any           #: the source's name for it (or the seq)
    image: Any          #: what the model classifies (path, PIL image, (H, W, 3) uint8 array)
    received: float     #: time.perf_counter() when the reader got it


class LatestFrame:
    """A background reader of ``source`` (an iterable of images, or of (name, image) pairs when
    ``named``) that keeps only the newest frame. ``get()`` waits for a frame newer than the last
    one it returned; ``dropped`` counts frames never returned. Use as a context manager (or call
    ``close()``): the reader stops at the next frame."""

    def __init__(self, source: Iterable[Any], named: bool = False):
        self._source = source
        self._named = named
        self._cond = threading.Condition()
        self._latest: Optional[Frame] = None
        self._returned = -1
        self._done = False
        self._error: Optional[BaseException] = None
        self._stop = threading.Event()
        self.received = 0
        self.returned = 0
        self._thread = threading.Thread(target=self._read, name="tinymobile-latest-frame", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for seq, item in enumerate(self._source):
                name, image = item if self._named else (seq, item)
                frame = Frame(seq, name, image, time.perf_counter())
                with self._cond:
                    self._latest = frame  # the older waiting frame, if any, is dropped here
                    self.received += 1
                    self._cond.notify_all()
                if self._stop.is_set():
                    break
        except BaseException as e:  # noqa: BLE001 — handed to the consumer by get()
            self._error = e
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    @property
    def dropped(self) -> int:
        """Frames read but never returned (superseded before the consumer was free)."""
        with self._cond:
            waiting = self._latest is not None and self._latest.seq > self._returned
            return self.received - self.returned - int(waiting)

    def get(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """The newest frame not returned yet, waiting for one; None when the source has ended (or
        after ``timeout`` seconds). An exception raised by the source is raised here."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._latest is not None and self._latest.seq > self._returned:
                    frame = self._latest
                    self._returned = frame.seq
                    self.returned += 1
                    self._latest = None  # the consumer owns it now: hold no reference
                    return frame
                if self._done:
                    if self._error is not None:
                        raise self._error
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def close(self) -> None:
        self._stop.set()

    def __enter__(self) -> "LatestFrame":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.get()
            if frame is None:
                return
            yield frame


class StreamResult(NamedTuple):
    seq: int                        #: the frame's position in the source
    name: Any                       #: its name
    top: List[Tuple[str, float]]    #: (label, probability), most probable first
    latency: float                  #: seconds from the reader receiving the frame to this result
    dropped: int                    #: frames dropped so far


def classify_latest(model, source: Iterable[Any], top: int = 5, named: bool = False,
                    limit: Optional[int] = None) -> Iterator[StreamResult]:
    """Classify the newest frame of ``source`` each time the model is free (see
    :class:`LatestFrame`); ``limit`` stops after that many results. ``model`` is anything with
    ``classify(image, top)`` (a :class:`~tinymobile.Model`)."""
    with LatestFrame(source, named=named) as frames:
        for k, frame in enumerate(frames):
            if limit is not None and k >= limit:
                return
            result = model.classify(frame.image, top=top)
            yield StreamResult(frame.seq, frame.name, result, time.perf_counter() - frame.received,
                               frames.dropped)

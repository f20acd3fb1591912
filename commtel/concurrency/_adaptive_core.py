"""The sans-I/O adaptive limit: sampling windows, the unloaded-latency baseline and its probes.

Finished calls are folded into a window; when it holds *min_samples* calls and lasted
``max(window_s, 2 x baseline)``, the algorithm computes the next limit from the window's
mean latency and the *baseline* (the latency without queueing). The core then refuses to
grow a limit the traffic does not use (fewer than half of it in flight) and clamps it.

The baseline is the lowest window mean seen. A baseline that was not confirmed for
*probe_interval_s* (with jitter, so a fleet does not probe in step) is re-measured; the
first probes come sooner (0.5 s after the first window, then 1, 2, 4 … s), so a baseline
first measured above the knee is corrected within seconds. While probing the limit drops
to *probe_fraction* of itself until the first few calls admitted at that lower
concurrency (5, or *min_samples* if fewer) finished, every one of them, and their mean
becomes the baseline (as Envoy's adaptive concurrency filter and BBR's ProbeRTT do). Without probes a limiter that keeps a little
queue would never see the unloaded latency again, and one whose dependency got slower
for everyone would shrink for ever. Calls admitted before a probe started or ended carry
an older *epoch* and are not counted.

The core never reads the clock: it is handed ``now``. Callers serialise access.
"""

from __future__ import annotations

import math

from collections.abc import Callable

from ._algorithms import LimitAlgorithm, Window


__all__ = ["AdaptiveCore"]

# Calls a probe measures (fewer if min_samples is lower): enough for a mean within ~5 %, few
# enough that the limit is lowered for about two latencies.
_PROBE_SAMPLES = 5
# The first probe's delay after the first baseline; each later one waits twice as long, up to the interval.
_FIRST_PROBE_S = 0.5


class AdaptiveCore:
    """The limit of one adaptive limiter, moved by the latency of the calls it admitted.

    :attr:`limit` is what the gate enforces (the probe limit while probing);
    :attr:`estimate` is the algorithm's float limit. Limit changes are appended to
    :attr:`changes` as ``(from, to, reason, rtt_s, baseline_s)`` for the driver to publish.
    """

    __slots__ = (
        "_count",
        "_drops",
        "_max_in_flight",
        "_probe_admitted",
        "_probe_epoch",
        "_rtt_n",
        "_rtt_sum",
        "_started",
        "algorithm",
        "baseline",
        "changes",
        "epoch",
        "estimate",
        "limit",
        "max_limit",
        "min_limit",
        "min_samples",
        "next_probe_at",
        "probe_fraction",
        "probe_interval_s",
        "probe_jitter",
        "probe_samples",
        "probe_started",
        "probes",
        "probing",
        "random",
        "window_s",
    )

    def __init__(
        self,
        algorithm: LimitAlgorithm,
        *,
        initial_limit: int,
        min_limit: int,
        max_limit: int,
        window_s: float,
        min_samples: int,
        probe_interval_s: float,
        probe_fraction: float,
        probe_jitter: float,
        random: Callable[[], float],
    ) -> None:
        self.algorithm = algorithm
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.window_s = window_s
        self.min_samples = min_samples
        self.probe_samples = max(1, min(min_samples, _PROBE_SAMPLES))
        self.probe_interval_s = probe_interval_s
        self.probe_fraction = probe_fraction
        self.probe_jitter = probe_jitter
        self.random = random
        self.estimate = float(initial_limit)
        self.limit = initial_limit
        self.epoch = 0
        self.baseline = 0.0
        self.next_probe_at = math.inf
        self.probing = False
        self.probe_started = 0.0
        self.probes = 0
        self._probe_epoch = -1
        self._probe_admitted = 0
        self.changes: list[tuple[int, int, str, float, float]] = []
        self._reset_window(0.0)

    def _reset_window(self, now: float) -> None:
        self._started = now
        self._count = self._drops = self._rtt_n = self._max_in_flight = 0
        self._rtt_sum = 0.0

    def window_length(self) -> float:
        """How long a window stays open at least: *window_s*, or twice the baseline if longer."""
        return max(self.window_s, 2 * self.baseline)

    def admit(self) -> int:
        """The epoch to give a call admitted now.

        While probing, the first calls admitted get the probe's epoch and are measured,
        every one of them to its end (the first to finish are the fastest, so stopping at
        the first few to finish would understate the latency); later ones get another.
        """
        if self.probing and self.epoch == self._probe_epoch:
            self._probe_admitted += 1
            if self._probe_admitted >= self.probe_samples:
                self.epoch += 1
                return self._probe_epoch
        return self.epoch

    def sample(self, epoch: int, now: float, rtt_s: float | None, *, dropped: bool, in_flight: int) -> bool:
        """Fold in one finished call admitted at *epoch*; ``True`` when :attr:`limit` changed.

        Args:
            epoch: What :meth:`admit` gave the call.
            now: When it finished.
            rtt_s: Its latency, or ``None`` when its latency says nothing (it failed fast).
            dropped: It signalled overload (a timeout, HTTP 429 or 503).
            in_flight: Calls in flight as it finished (itself included).
        """
        if epoch != (self._probe_epoch if self.probing else self.epoch):
            return self.tick(now)
        self._count += 1
        self._drops += dropped
        if rtt_s is not None:
            self._rtt_n += 1
            self._rtt_sum += rtt_s
        self._max_in_flight = max(self._max_in_flight, in_flight)
        if self.probing:
            if self._count < self.probe_samples:
                return self.tick(now)
        elif self._count < self.min_samples or now - self._started < self.window_length():
            return self.tick(now)
        window = Window(
            self._rtt_sum / self._rtt_n if self._rtt_n else 0.0, self._count, self._drops, self._max_in_flight
        )
        self._reset_window(now)
        if self.probing:
            return self._probed(window, now)
        return self._update(window, now)

    def tick(self, now: float) -> bool:
        """Start a probe that is due, or end one that found no traffic; ``True`` when :attr:`limit` changed."""
        if self.probing:
            if now - self.probe_started > max(1.0, 10 * self.window_length()):
                return self._end_probe(now, 0.0)
            return False
        if now < self.next_probe_at:
            return False
        self.probing = True
        self.probe_started = now
        self.epoch += 1
        self._probe_epoch = self.epoch
        self._probe_admitted = 0
        self._reset_window(now)
        return self._move(max(self.min_limit, math.ceil(self.estimate * self.probe_fraction)), "probe", 0.0)

    def _update(self, window: Window, now: float) -> bool:
        if window.rtt_s > 0 and (self.baseline == 0 or window.rtt_s < self.baseline):
            self.baseline = window.rtt_s
            self._confirmed(now)
        estimate = self.estimate
        target = self.algorithm.next_limit(estimate, window, self.baseline)
        if target > estimate and window.max_in_flight < estimate / 2:
            target = estimate  # the traffic does not use the limit: growing it would prove nothing
        self.estimate = min(float(self.max_limit), max(float(self.min_limit), target))
        changed = self._move(int(self.estimate), "latency", window.rtt_s)
        return self.tick(now) or changed

    def _probed(self, window: Window, now: float) -> bool:
        if window.rtt_s > 0:
            self.baseline = window.rtt_s
        return self._end_probe(now, window.rtt_s)

    def _end_probe(self, now: float, rtt_s: float) -> bool:
        self.probing = False
        self.probes += 1
        self.epoch += 1
        self._reset_window(now)
        self._confirmed(now)
        return self._move(int(self.estimate), "probe_done", rtt_s)

    def _confirmed(self, now: float) -> None:
        """The baseline holds as of *now*: re-measure it one (jittered) probe interval later."""
        interval = min(self.probe_interval_s, _FIRST_PROBE_S * 2**self.probes)
        self.next_probe_at = now + interval * (1 - self.probe_jitter * self.random())

    def _move(self, limit: int, reason: str, rtt_s: float) -> bool:
        if limit == self.limit:
            return False
        self.changes.append((self.limit, limit, reason, rtt_s, self.baseline))
        self.limit = limit
        return True

"""Is the generator learning? One warning when, after `TrainConfig.stall_check` iterations,
it has not.

Each iteration logs `G/l1_per_frame` (mean |fake - real| on [-1, 1], unweighted), `G/out_abs`
(mean |fake|) and `ref/l1_constant` (the L1 of the best constant image for the same real
frames, `losses.constant_image_l1`). At iteration `stall_check` the means over the last
`span` iterations are compared: the generator has not learnt when its output is still near
zero (mean |fake| < `NEAR_ZERO`) or its L1 is no better than the constant image's
(L1 >= `CONSTANT_MARGIN` x constant). Then one `warning:` line says so and what to try.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

#: mean |generated| below this = "output near zero" (images on [-1, 1]; real frames ~0.3-0.6).
NEAR_ZERO = 1e-2
#: L1 above this fraction of the constant image's L1 = "no better than a constant image".
CONSTANT_MARGIN = 0.95


@dataclass
class LearningMonitor:
    """Feed it every iteration's logged means (`update`); it returns the warning text once."""

    after: int                # the iteration at which to judge (0 = never)
    init: str = "none"        # TrainConfig.init, for the advice
    span: int = 20            # iterations averaged
    recent: deque = field(init=False)   # (l1, constant l1, mean |G|) of the last `span` iterations

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=self.span)

    def update(self, step: int, logs: dict[str, float]) -> str | None:
        """Record iteration `step`'s logs; at step == after return the warning (or None)."""
        keys = ("G/l1_per_frame", "ref/l1_constant", "G/out_abs")
        if all(k in logs for k in keys):
            self.recent.append(tuple(logs[k] for k in keys))
        if self.after <= 0 or step != self.after or not self.recent:
            return None
        n = len(self.recent)
        l1, const, out = (sum(r[i] for r in self.recent) / n for i in range(3))
        near_zero, no_better = out < NEAR_ZERO, l1 >= CONSTANT_MARGIN * const
        if not (near_zero or no_better):
            return None
        what = []
        if near_zero:
            what.append(f"its output is still near zero (mean |G| {out:.1e})")
        if no_better:
            what.append(f"its L1 per frame {l1:.4f} is no better than a constant image's ({const:.4f})")
        if self.init == "orthogonal":
            advice = ("the authors' init (init=orthogonal, gain 0.02) starts the generator near zero and "
                      "learning late; start a new run with --set init=none (the default; see docs/training_init.md)")
        else:
            advice = ("check the data and the loss weights, or try a larger --set lr_g=... "
                      "or --set init=kaiming (see docs/training_init.md)")
        return (f"after {step} iterations the generator has not learnt: {' and '.join(what)}; {advice}. "
                f"(--set stall_check=0 turns this check off)")

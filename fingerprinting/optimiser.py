"""The optimiser every network here trains with: AdamW under a one-cycle learning-rate schedule."""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


class OneCycleAdamW:
    """AdamW whose learning rate warms up over the first `warmup` share of `total_steps`, then anneals.

    `step(loss)` is one training step: clear gradients, back-propagate `loss`, update, advance the schedule.
    """

    def __init__(
        self,
        parameters: Iterable[torch.nn.Parameter],
        learning_rate: float,
        weight_decay: float,
        total_steps: int,
        warmup: float = 0.1,
    ) -> None:
        self.optimiser = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay)
        self.schedule = torch.optim.lr_scheduler.OneCycleLR(self.optimiser, learning_rate, total_steps=total_steps, pct_start=warmup)

    def step(self, loss: Tensor) -> None:
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        self.schedule.step()

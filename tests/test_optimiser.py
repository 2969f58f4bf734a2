"""OneCycleAdamW: one call is one training step; the learning rate warms up, peaks, then anneals."""
import torch

from fingerprinting.optimiser import OneCycleAdamW


def test_steps_follow_one_cycle_and_reduce_the_loss():
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(8))
    optimiser = OneCycleAdamW([weight], learning_rate=0.1, weight_decay=0.0, total_steps=50, warmup=0.2)
    rates, losses = [], []
    for _ in range(50):
        rates.append(optimiser.optimiser.param_groups[0]["lr"])
        loss = (weight**2).sum()
        losses.append(loss.item())
        optimiser.step(loss)
    peak = max(range(50), key=rates.__getitem__)
    assert abs(rates[peak] - 0.1) < 1e-6 and peak == 9  # warm-up: the first 20 % of 50 steps
    assert rates[0] < rates[peak] and rates[-1] < rates[0]
    assert losses[-1] < 0.1 * losses[0]
    assert weight.grad is not None  # gradients of the last step are kept until the next one clears them

"""Training objectives of the fingerprint network: metric learning, detection, parsing and the FEN constraints."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def supervised_contrastive(embedding: Tensor, labels: Tensor, temperature: float = 0.1) -> Tensor:
    """Supervised contrastive loss (Khosla et al. 2020) over L2-normalised embeddings.

    `labels` < 0 mark images with no group (real photographs): they are never anchors, only
    negatives, so the real class is not pulled into one group of its own.
    """
    similarity = embedding @ embedding.T / temperature
    self_mask = torch.eye(len(labels), dtype=torch.bool, device=embedding.device)
    similarity = similarity.masked_fill(self_mask, float("-inf"))
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask & (labels[:, None] >= 0)
    counts = positives.sum(1)
    anchors = counts > 0
    if not anchors.any():
        return embedding.sum() * 0.0
    mean_log_prob = log_prob.masked_fill(~positives, 0.0).sum(1)[anchors] / counts[anchors]
    return -mean_log_prob.mean()


def uniformity(embedding: Tensor, t: float = 2.0) -> Tensor:
    """Wang & Isola's uniformity: spreads a set of embeddings (here the real photographs) over the sphere."""
    if len(embedding) < 2:
        return embedding.sum() * 0.0
    distances = torch.pdist(embedding).square()
    return torch.log(torch.exp(-t * distances).mean())


def _centred_power(residual: Tensor) -> Tensor:
    spectrum = torch.fft.fft2(residual, norm="ortho")
    return torch.fft.fftshift(spectrum.real.square() + spectrum.imag.square(), dim=(-2, -1)).mean(1)


def residual_constraints(residual: Tensor, low_frequency_fraction: float = 0.125) -> dict[str, Tensor]:
    """The paper's four constraints on the estimated fingerprint, each a loss to minimise.

    magnitude: low energy; spectrum: little energy at the lowest frequencies; repetition: a peaky
    spectrum (repeated patterns), as minus the log peak-to-mean ratio; symmetry: the centred
    spectrum equals its mirror images, relative to its own energy.
    """
    power = _centred_power(residual)  # (n, h, w)
    _, h, w = power.shape
    ys = torch.arange(h, device=residual.device) - h // 2
    xs = torch.arange(w, device=residual.device) - w // 2
    low = (ys[:, None].abs() <= h * low_frequency_fraction) & (xs[None, :].abs() <= w * low_frequency_fraction)
    # Mirror about the centre frequency: drop the unpaired Nyquist row/column of even sides first.
    core = power[:, h % 2 == 0 :, w % 2 == 0 :]
    asymmetry = (core - core.flip(-1)).square().mean((1, 2)) + (core - core.flip(-2)).square().mean((1, 2))
    mean_power = power.mean((1, 2))
    peak = power.masked_fill(low, 0.0).amax((1, 2))
    return {
        "magnitude": residual.square().mean(),
        "spectrum": power[:, low].mean(),
        "repetition": -torch.log(peak / (mean_power + 1e-12) + 1e-12).mean(),
        "symmetry": (asymmetry / (mean_power.square() + 1e-12)).mean(),
    }


def parsing_losses(
    continuous: Tensor,
    discrete: tuple[Tensor, ...],
    loss_logits: Tensor,
    continuous_target: Tensor,
    discrete_target: Tensor,
    loss_target: Tensor,
) -> dict[str, Tensor]:
    """L1 on the min-max scale, cross-entropy per discrete hyperparameter, multi-label BCE for loss types.

    Targets that are NaN (continuous, loss types) or -1 (discrete) are unknown for that member and
    ignored: an external generator's design is read from its files, its training objective is not.
    """
    known = ~torch.isnan(continuous_target)
    l1 = (continuous - continuous_target.nan_to_num()).abs()[known].mean() if known.any() else continuous.sum() * 0.0
    ce = torch.stack([F.cross_entropy(logits, discrete_target[:, i], ignore_index=-1) for i, logits in enumerate(discrete)])
    ce = ce.nan_to_num().mean()  # a batch where one hyperparameter is all unknown gives NaN: count it 0
    told = ~torch.isnan(loss_target)
    bce = F.binary_cross_entropy_with_logits(loss_logits[told], loss_target[told]) if told.any() else loss_logits.sum() * 0.0
    return {"continuous": l1, "discrete": ce, "loss_types": bce}

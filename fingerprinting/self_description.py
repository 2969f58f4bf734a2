"""Evidence that needs no fakes: how far a crop's residual self-description departs from camera photographs.

After Nguyen, Azizpour and Stamm, "Forensic Self-Descriptions Are All You Need" (CVPR 2025), in a
small linear form that runs on a CPU:

1. **Predictive filters learned on real photographs only.** Each filter predicts a pixel from one
   neighbourhood of it (the full ring, a causal half-plane, a row, a column) by least squares over
   camera crops; its residual is what camera statistics cannot explain.
2. **A self-description per crop.** Each residual map, at full and at half resolution, gets its own
   linear model fitted to that crop alone (each residual sample predicted from its 8 neighbours);
   the model's coefficients and the log energies before and after it describe how the crop's
   residual is structured, not what the crop shows. Generators leave structure there (periodic
   interpolation, pixel shuffle phases, over-smooth or over-sharp textures), so the share of
   residual energy at each position modulo 4 joins the description.
3. **A density of real descriptions.** A Gaussian mixture over the leading principal components of
   camera crops' standardised descriptions; a crop's anomaly score is how much lower its log-likelihood
   is than that of camera crops the mixture did not see (out-of-fold), in units of their spread, so a
   new camera crop scores about 0 and not the optimistic in-sample value. No generated image is used.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

_EPSILON = 1e-6
_CHUNK = 256  # crops at a time: the unfolded windows of a crop take ~100x its pixels in memory
_PHASE = 4  # generators upsample by 2 or 4: residual energy per position modulo 4 shows their phase


def neighbourhood_masks(radius: int) -> dict[str, np.ndarray]:
    """Which taps of a (2r+1)^2 window each predictive filter may use (never the centre)."""
    side = 2 * radius + 1
    rows, cols = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    centre = (rows == 0) & (cols == 0)
    masks = {
        "ring": ~centre,
        "causal": (rows < 0) | ((rows == 0) & (cols < 0)),
        "anticausal": (rows > 0) | ((rows == 0) & (cols > 0)),
        "row": (rows == 0) & ~centre,
        "column": (cols == 0) & ~centre,
    }
    return {name: mask.reshape(side, side) for name, mask in masks.items()}


def _planes(crops: np.ndarray) -> torch.Tensor:
    """(n, s, s, 3) uint8 -> (3n, 1, s, s) float32 in [0, 1]: every colour channel as its own plane."""
    pixels = torch.from_numpy(np.ascontiguousarray(crops)).float().div_(255.0)
    return pixels.permute(0, 3, 1, 2).reshape(-1, 1, crops.shape[1], crops.shape[2])


def _scales(planes: torch.Tensor, scales: int) -> list[torch.Tensor]:
    """The planes at full resolution and each further 2x box-averaged reduction."""
    out = [planes]
    for _ in range(scales - 1):
        out.append(F.avg_pool2d(out[-1], 2))
    return out


def _unfold(planes: torch.Tensor, radius: int) -> torch.Tensor:
    """(m, 1, h, w) -> (m, taps, (h-2r)(w-2r)): every window of valid pixels."""
    return F.unfold(planes, 2 * radius + 1)


def fit_predictive_filters(crops: np.ndarray, radius: int = 2, scales: int = 2, ridge: float = 1e-4) -> np.ndarray:
    """Least-squares predictive filters on real crops: (scales, filters, 2r+1, 2r+1) float32 kernels.

    Each kernel is the centre tap minus the prediction, so convolving gives the residual directly.
    """
    masks = neighbourhood_masks(radius)
    side = 2 * radius + 1
    centre = radius * side + radius
    grams = torch.zeros(scales, side * side, side * side, dtype=torch.float64)
    count = np.zeros(scales)
    for start in range(0, len(crops), _CHUNK):
        for s, planes in enumerate(_scales(_planes(crops[start : start + _CHUNK]), scales)):
            windows = _unfold(planes, radius).permute(0, 2, 1).reshape(-1, side * side).double()
            grams[s] += windows.T @ windows
            count[s] += len(windows)
    kernels = np.zeros((scales, len(masks), side, side), np.float32)
    for s in range(scales):
        gram = grams[s] / count[s]
        for f, mask in enumerate(masks.values()):
            taps = np.flatnonzero(mask.ravel())
            a = gram[np.ix_(taps, taps)] + ridge * torch.eye(len(taps), dtype=torch.float64)
            weights = torch.linalg.solve(a, gram[taps, centre])
            kernel = np.zeros(side * side)
            kernel[centre] = 1.0
            kernel[taps] = -weights.numpy()
            kernels[s, f] = kernel.reshape(side, side)
    return kernels


def _ar_description(residual: torch.Tensor) -> torch.Tensor:
    """Per plane, a least-squares model of each residual sample from its 8 neighbours: coefficients,
    log energy of the residual and of what the model leaves, (m, 10)."""
    windows = _unfold(residual, 1)  # (m, 9, p)
    target = windows[:, 4]
    neighbours = torch.cat([windows[:, :4], windows[:, 5:]], dim=1)  # (m, 8, p)
    count = neighbours.shape[-1]
    gram = neighbours @ neighbours.transpose(1, 2) / count
    cross = (neighbours @ target.unsqueeze(-1)).squeeze(-1) / count
    energy = (target * target).mean(-1)
    ridge = (energy * 1e-3 + _EPSILON).view(-1, 1, 1) * torch.eye(8)
    coefficients = torch.linalg.solve(gram + ridge, cross)
    left = (energy - (coefficients * cross).sum(-1)).clamp_min(_EPSILON)
    return torch.cat([coefficients, torch.log(energy + _EPSILON)[:, None], torch.log(left)[:, None] - torch.log(energy + _EPSILON)[:, None]], dim=1)


def _phase_energy(residual: torch.Tensor) -> torch.Tensor:
    """Share of residual energy at each position modulo ``_PHASE``, as log ratios to the mean, (m, 16)."""
    m, _, h, w = residual.shape
    h, w = h - h % _PHASE, w - w % _PHASE
    power = residual[:, 0, :h, :w].pow(2).reshape(m, h // _PHASE, _PHASE, w // _PHASE, _PHASE).mean((1, 3)).reshape(m, -1)
    return torch.log(power + _EPSILON) - torch.log(power.mean(-1, keepdim=True) + _EPSILON)


def describe(crops: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """(n, s, s, 3) uint8 crops -> (n, d) float32 self-descriptions, channels averaged."""
    return np.concatenate([_describe(crops[start : start + _CHUNK], kernels) for start in range(0, max(len(crops), 1), _CHUNK)])


def _describe(crops: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    n = len(crops)
    scales, filters, side, _ = kernels.shape
    parts = []
    with torch.inference_mode():
        for s, planes in enumerate(_scales(_planes(crops), scales)):
            residuals = F.conv2d(planes, torch.from_numpy(kernels[s]).unsqueeze(1))  # (3n, filters, h, w)
            for f in range(filters):
                residual = residuals[:, f : f + 1]
                parts.append(_ar_description(residual))
                if s == 0 and f == 0:
                    parts.append(_phase_energy(residual))
    description = torch.cat(parts, dim=1).reshape(n, 3, -1).mean(1)
    return description.numpy().astype(np.float32)


class SelfDescriptionDetector:
    """Zero-shot detector: camera-photo residual self-descriptions and their Gaussian mixture.

    Parameters
    ----------
    radius : int, default=2
        The predictive filters' window is ``2 * radius + 1`` pixels square.
    scales : int, default=2
        Full resolution and ``scales - 1`` further 2x reductions.
    n_components : int, default=4
        Components of the Gaussian mixture over real descriptions.
    n_dims : int, default=24
        Principal components of the standardised descriptions the mixture models (fewer when there are
        few real crops): a full covariance in every dimension would learn the fitting crops by heart.
    folds : int, default=5
        Out-of-fold log-likelihoods of the real crops set the anomaly score's zero and unit.
    random_state : int, default=0
        Seed of the mixture's initialisation.

    Attributes
    ----------
    kernels_ : ndarray of shape (scales, filters, 2 * radius + 1, 2 * radius + 1)
        The predictive filters (centre tap minus the prediction).
    density_ : Pipeline
        Standardisation, PCA and the Gaussian mixture, fitted on every real crop.
    loglik_mean_, loglik_std_ : float
        Mean and spread of the real crops' out-of-fold log-likelihoods: anomaly scores are in these units.

    Examples
    --------
    >>> detector = SelfDescriptionDetector().fit(real_crops)      # doctest: +SKIP
    >>> detector.anomaly_score(crops)  # > 0: less camera-like    # doctest: +SKIP
    """

    def __init__(self, *, radius: int = 2, scales: int = 2, n_components: int = 4, n_dims: int = 24, folds: int = 5,
                 random_state: int = 0) -> None:
        self.radius = radius
        self.scales = scales
        self.n_components = n_components
        self.n_dims = n_dims
        self.folds = folds
        self.random_state = random_state

    def fit(self, crops: np.ndarray) -> "SelfDescriptionDetector":
        """Learn the filters and the density from real crops only, (n, s, s, 3) uint8."""
        if min(self.radius, self.scales, self.n_components, self.n_dims) < 1 or self.folds < 2:
            raise ValueError("radius, scales, n_components and n_dims must be at least 1, folds at least 2")
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[-1] != 3 or crops.dtype != np.uint8:
            raise ValueError(f"expected uint8 crops of shape (n, s, s, 3), got {crops.dtype} {crops.shape}")
        least = 4 * self.n_components * self.folds
        if len(crops) < least:
            raise ValueError(f"need at least {least} real crops, got {len(crops)}")
        self.kernels_ = fit_predictive_filters(crops, self.radius, self.scales)
        descriptions = describe(crops, self.kernels_)
        out_of_fold = np.empty(len(descriptions))
        for fitting, held in KFold(self.folds, shuffle=True, random_state=self.random_state).split(descriptions):
            out_of_fold[held] = self._density(len(fitting)).fit(descriptions[fitting]).score_samples(descriptions[held])
        self.density_ = self._density(len(descriptions)).fit(descriptions)
        self.loglik_mean_, self.loglik_std_ = float(out_of_fold.mean()), float(out_of_fold.std() + _EPSILON)
        return self

    def _density(self, samples: int) -> Pipeline:
        dims = min(self.n_dims, max(1, samples // (4 * self.n_components)))
        mixture = GaussianMixture(self.n_components, covariance_type="full", reg_covar=1e-2, random_state=self.random_state)
        return make_pipeline(StandardScaler(), PCA(dims, random_state=self.random_state), mixture)

    def describe(self, crops: np.ndarray) -> np.ndarray:
        """Self-descriptions, (n, d) float32 (before standardisation)."""
        return describe(np.asarray(crops), self.kernels_)

    def score_samples(self, crops: np.ndarray) -> np.ndarray:
        """Log-likelihood of each crop's description under the camera mixture (higher: more camera-like)."""
        return self.density_.score_samples(self.describe(crops))

    def anomaly_score(self, crops: np.ndarray) -> np.ndarray:
        """How far below camera crops each crop's log-likelihood lies, in their standard deviations."""
        return ((self.loglik_mean_ - self.score_samples(crops)) / self.loglik_std_).astype(np.float32)

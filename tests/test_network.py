"""The fingerprint network and its losses, on random and synthetic tensors."""
from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from fingerprinting.losses import parsing_losses, residual_constraints, supervised_contrastive, uniformity
from fingerprinting.network import (
    HIGH_PASS,
    FingerprintNet,
    HeadSpec,
    NetworkOutput,
    flops_per_crop,
    inference_copy,
    log_power_spectrum,
    polyphase_kernel,
    to_network_input,
    to_unshuffled_input,
)
from fingerprinting.design import HYPERPARAMETERS, LOSS_TYPES

FEN_FLOPS_PER_128PX = 20e9  # the paper's 17-layer, 64-channel DnCNN


@pytest.fixture(scope="module")
def net() -> FingerprintNet:
    torch.manual_seed(0)
    return FingerprintNet().eval()


@pytest.mark.parametrize("side", [32, 45, 64])
def test_outputs_for_any_crop_side(net: FingerprintNet, side: int) -> None:
    crops = torch.randint(0, 256, (4, side, side, 3), dtype=torch.uint8)
    with torch.no_grad():
        out = net(to_network_input(crops))
    assert out.embedding.shape == (4, net.config.embedding_dim)
    assert torch.allclose(out.embedding.norm(dim=1), torch.ones(4), atol=1e-5)
    assert out.fake_logit.shape == (4,)
    assert out.continuous.shape == (4, sum(h.kind == "continuous" for h in HYPERPARAMETERS))
    assert ((out.continuous >= 0) & (out.continuous <= 1)).all()
    assert [d.shape[1] for d in out.discrete] == [len(h.choices) for h in HYPERPARAMETERS if h.kind == "discrete"]
    assert out.loss_logits.shape == (4, len(LOSS_TYPES))
    assert out.residual.shape == (4, 3, side - side % 2, side - side % 2)


def test_head_spec_follows_the_generator_space() -> None:
    spec = HeadSpec.from_space()
    assert [name for name, _, _ in spec.continuous] == [h.name for h in HYPERPARAMETERS if h.kind == "continuous"]
    assert dict(spec.discrete) == {h.name: h.choices for h in HYPERPARAMETERS if h.kind == "discrete"}
    assert spec.loss_types == LOSS_TYPES
    assert HeadSpec.from_dict(asdict(spec)) == spec


def test_untrained_residual_removes_flat_content(net: FingerprintNet) -> None:
    flat = torch.full((2, 64, 64, 3), 173, dtype=torch.uint8)
    with torch.no_grad():
        residual = net(to_network_input(flat)).residual
    assert residual.abs().max() < 1e-6


def test_spectrum_features_do_not_depend_on_crop_side() -> None:
    """A period-2 pattern lands on the same pooled frequency cell at 32 and at 64 px."""
    features = []
    for side in (32, 64):
        pattern = torch.zeros(1, 3, side, side)
        pattern[..., ::2, :] = 1.0
        features.append(log_power_spectrum(pattern, 16).reshape(16, 16))
    assert features[0].argmax() == features[1].argmax()


def test_at_least_100x_cheaper_than_the_fen(net: FingerprintNet) -> None:
    flops = flops_per_crop(net, 128)
    assert 0 < flops * 100 <= FEN_FLOPS_PER_128PX
    assert flops_per_crop(net, 32) < flops_per_crop(net, 64) < flops


def test_contrastive_loss_prefers_grouped_embeddings() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 1, -1, -1])
    centres = torch.nn.functional.normalize(torch.randn(3, 16, generator=torch.Generator().manual_seed(1)), dim=1)
    grouped = torch.nn.functional.normalize(centres[labels.clamp(min=0) + (labels < 0) * 2] + 0.05 * torch.randn(8, 16), dim=1)
    shuffled = grouped[torch.tensor([0, 3, 6, 1, 4, 7, 2, 5])]
    assert supervised_contrastive(grouped, labels) < supervised_contrastive(shuffled, labels)


def test_reals_are_never_contrastive_anchors() -> None:
    embedding = torch.nn.functional.normalize(torch.randn(5, 8), dim=1)
    assert supervised_contrastive(embedding, torch.full((5,), -1)) == 0
    spread = torch.nn.functional.normalize(torch.randn(32, 8), dim=1)
    collapsed = torch.nn.functional.normalize(torch.ones(32, 8) + 0.01 * torch.randn(32, 8), dim=1)
    assert uniformity(spread) < uniformity(collapsed)


def test_residual_constraints_reward_fingerprint_like_residuals() -> None:
    generator = torch.Generator().manual_seed(0)
    noise = 0.1 * torch.randn(4, 3, 32, 32, generator=generator)
    checkerboard = noise * 0.1 + 0.1 * (torch.arange(32)[:, None] + torch.arange(32)[None, :]).remainder(2).float()
    smooth = torch.nn.functional.avg_pool2d(noise, 9, stride=1, padding=4) * 5
    assert residual_constraints(checkerboard)["repetition"] < residual_constraints(noise)["repetition"]
    assert residual_constraints(noise)["spectrum"] < residual_constraints(smooth)["spectrum"]
    assert residual_constraints(0.1 * noise)["magnitude"] < residual_constraints(noise)["magnitude"]
    # A diagonal filter puts energy along one diagonal of the spectrum: not mirror-symmetric.
    diagonal = torch.tensor([[[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, -1.0]]]])
    directional = torch.nn.functional.conv2d(noise.reshape(12, 1, 32, 32), diagonal, padding=1).reshape(4, 3, 32, 32)
    assert residual_constraints(noise)["symmetry"] < residual_constraints(directional)["symmetry"]


def test_parsing_losses_ignore_unknown_targets() -> None:
    continuous = torch.full((2, 3), 0.5)
    discrete = (torch.zeros(2, 4), torch.zeros(2, 2))
    loss_logits = torch.zeros(2, 5)
    known = parsing_losses(continuous, discrete, loss_logits, torch.tensor([[0.5, 0.5, 0.5], [1.0, float("nan"), 0.0]]),
                           torch.tensor([[1, -1], [-1, -1]]), torch.zeros(2, 5))
    assert known["continuous"].item() == pytest.approx(1.0 / 5)
    assert known["discrete"].item() == pytest.approx(torch.log(torch.tensor(4.0)).item() / 2)
    assert known["loss_types"].item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    # A member whose objective is unknown (NaN loss targets) adds nothing to the loss-type term.
    loss_logits = torch.tensor([[0.0] * 5, [9.0] * 5])
    loss_target = torch.tensor([[0.0] * 5, [float("nan")] * 5])
    masked = parsing_losses(continuous, discrete, loss_logits, torch.full((2, 3), 0.5), torch.full((2, 2), -1), loss_target)
    assert masked["loss_types"].item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    nothing = parsing_losses(continuous, discrete, loss_logits, torch.full((2, 3), 0.5), torch.full((2, 2), -1), torch.full((2, 5), float("nan")))
    assert nothing["loss_types"].item() == 0.0


def test_polyphase_high_pass_equals_the_full_resolution_filter() -> None:
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    full = torch.nn.functional.conv2d(x, HIGH_PASS.expand(3, 1, 3, 3), padding=1, groups=3)
    poly = torch.nn.functional.conv2d(torch.nn.functional.pixel_unshuffle(x, 2), polyphase_kernel(HIGH_PASS), padding=1)
    assert torch.allclose(torch.nn.functional.pixel_shuffle(poly, 2), full, atol=1e-6)


def _reference_forward(net: FingerprintNet, x: torch.Tensor) -> NetworkOutput:
    """The forward pass written plainly: full-resolution residual, ``Tensor.std``, spectrum of all three channels."""
    unshuffled = net.residual(torch.nn.functional.pixel_unshuffle(x, 2))
    residual = torch.nn.functional.pixel_shuffle(unshuffled, 2)
    maps = net.encoder(unshuffled)
    pooled = torch.cat([maps.mean((2, 3)), maps.std((2, 3))], 1)
    spectrum = net.spectrum_proj(net.spectrum_norm(log_power_spectrum(residual, net.config.spectrum_bins)))
    hidden = net.mix(torch.cat([pooled, spectrum], 1))
    return NetworkOutput(
        residual=residual,
        embedding=torch.nn.functional.normalize(net.embed(hidden), dim=1),
        fake_logit=net.fake_head(hidden).squeeze(1),
        continuous=torch.sigmoid(net.continuous_head(hidden)),
        discrete=tuple(head(hidden) for head in net.discrete_heads),
        loss_logits=net.loss_head(hidden),
    )


def test_forward_and_inference_copy_match_the_plain_forward() -> None:
    torch.manual_seed(3)
    net = FingerprintNet()
    with torch.no_grad():  # batch norms with real statistics and a live correction, as after training
        for module in net.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        net.residual.project.weight.normal_(0, 0.1)
    net.eval()
    state = {key: value.clone() for key, value in net.state_dict().items()}
    crops = torch.randint(0, 256, (6, 48, 48, 3), dtype=torch.uint8)
    x = to_network_input(crops)
    with torch.inference_mode():
        expected = _reference_forward(net, x)
        fast = inference_copy(net)
        outputs = [net(x), fast(x, with_residual=False), fast.forward_unshuffled(to_unshuffled_input(crops), with_residual=False)]
    for output in outputs:
        for name in ("embedding", "fake_logit", "continuous", "loss_logits"):
            assert torch.allclose(getattr(output, name), getattr(expected, name), atol=2e-5, rtol=1e-4), name
        for got, want in zip(output.discrete, expected.discrete):
            assert torch.allclose(got, want, atol=2e-5, rtol=1e-4)
    assert torch.equal(outputs[0].residual, expected.residual)
    assert outputs[1].residual.numel() == outputs[2].residual.numel() == 0
    assert net.state_dict().keys() == state.keys() and all(torch.equal(net.state_dict()[k], v) for k, v in state.items())


@pytest.mark.parametrize("side", [32, 45])
def test_unshuffled_input_is_the_unshuffled_network_input(side: int) -> None:
    crops = torch.randint(0, 256, (3, side, side, 3), dtype=torch.uint8)
    assert torch.equal(to_unshuffled_input(crops), torch.nn.functional.pixel_unshuffle(to_network_input(crops), 2))

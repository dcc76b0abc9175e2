"""The embedded models' one training loop (`cachedit.zoo.training`): seeded runs repeat exactly and the loss falls."""

from types import SimpleNamespace

import pytest
import torch

from cachedit.zoo.tiny_dit import build_tiny_dit_transformer, flow_matching_loss
from cachedit.zoo.training import recent_mean, train_ema

SETTINGS = SimpleNamespace(seed=3, iterations=30, batch_size=16, learning_rate=3e-3, weight_decay=0.0,
                           warmup_iterations=1, grad_clip=1.0, ema_decay=0.9)


@pytest.fixture(autouse=True)
def one_thread():
    """As the recipes run (`threads: 1`): on shared cores more threads ran many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _build():
    return build_tiny_dit_transformer(num_layers=1, num_attention_heads=2, attention_head_dim=16)


def _loss(model, images, labels, generator):
    return flow_matching_loss(model, images, labels, generator=generator)


def _train(**changes):
    seen = []
    ema, losses = train_ema(SimpleNamespace(**{**vars(SETTINGS), **changes}), _build, _loss, desc="test",
                            after_iteration=lambda done, ema, losses: seen.append((done, len(losses))))
    return ema, losses, seen


def test_seeded_runs_repeat_exactly_and_the_loss_falls():
    ema, losses, seen = _train()
    again, losses_again, _ = _train()
    assert losses == losses_again
    assert all(torch.equal(a, b) for a, b in zip(ema.state_dict().values(), again.state_dict().values()))
    assert not ema.training and not any(p.requires_grad for p in ema.parameters())
    assert seen == [(i, i) for i in range(1, 31)]  # after every iteration, with the losses so far
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses


def test_another_seed_trains_other_weights():
    _, losses, _ = _train(iterations=3)
    _, other, _ = _train(iterations=3, seed=4)
    assert losses != other


def test_the_reported_loss_is_the_mean_of_the_last_hundred():
    assert recent_mean(list(range(150))) == sum(range(50, 150)) / 100
    assert recent_mean([2.0, 4.0]) == 3.0 and recent_mean([]) == 0

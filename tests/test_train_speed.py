"""The fast paths of DQN's update: each must give bit for bit what the plain torch call gives,
so that speeding training up never moves a trained weight (and no README number)."""

import copy

import torch

from liveq.algos.dqn import clip_grad_norm
from liveq.nets.averaged import WeightAverage


def net_with_grads(scale: float) -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 1))
    (scale * net(torch.randn(16, 5)).sum()).backward()
    return net


def test_clip_grad_norm_matches_torch_bit_for_bit():
    for scale, max_norm in ((100.0, 1.0), (0.01, 10.0)):  # clipped, then left alone
        ours, theirs = net_with_grads(scale), net_with_grads(scale)
        before = [p.grad.clone() for p in ours.parameters()]
        clip_grad_norm(list(ours.parameters()), max_norm)
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm)
        for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
            assert torch.equal(a.grad, b.grad)
        moved = any(not torch.equal(p.grad, g) for p, g in zip(ours.parameters(), before,
                                                                 strict=True))
        assert moved == (scale > 1.0)


def test_weight_average_matches_per_tensor_lerp_bit_for_bit():
    online = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.BatchNorm1d(7))
    average = WeightAverage(online, decay=0.99)
    by_hand = copy.deepcopy(online)
    generator = torch.Generator().manual_seed(1)
    for _ in range(20):
        with torch.no_grad():
            for p in online.parameters():
                p.add_(torch.randn(p.shape, generator=generator))
            online[1].num_batches_tracked += 1
        average.update(online)
        with torch.no_grad():
            for avg, new in zip(by_hand.state_dict().values(), online.state_dict().values(),
                                strict=True):
                if avg.is_floating_point():
                    avg.lerp_(new, 0.01)
                else:
                    avg.copy_(new)
    for key, value in by_hand.state_dict().items():
        assert torch.equal(average.module.state_dict()[key], value), key
    assert average.module[1].num_batches_tracked.item() == 20

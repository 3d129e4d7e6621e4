"""The metric registry: names resolve, unknown names fail with the valid list, outputs are floats."""

import numpy as np
import pytest

from ganforge.metrics import METRICS, get_metric


def test_unknown_metric_lists_valid_names_sorted():
    with pytest.raises(ValueError) as err:
        get_metric("inception_scroe")
    assert ", ".join(sorted(METRICS)) in str(err.value)


def test_every_registered_metric_returns_floats():
    rng = np.random.default_rng(0)
    feats = lambda n: rng.normal(size=(n, 4))  # noqa: E731
    args = {
        "class_coverage": (rng.integers(0, 3, 50), rng.integers(0, 3, 50), 3),
        "fid": (feats(40), feats(40)),
        "inception_score": (np.full((10, 5), 0.2),),
        "kid": (feats(40), feats(40)),
        "memorisation": (feats(20), feats(40), feats(20)),
        "prdc": (feats(40), feats(40)),
        "stacked_modes": (rng.integers(0, 10, (30, 3)),),
        "toy2d_modes": (rng.normal(size=(30, 2)), "toy2d-ring"),
    }
    assert set(args) == set(METRICS)
    for name, fn_args in args.items():
        out = get_metric(name)(*fn_args)
        assert out and all(isinstance(k, str) and isinstance(v, float) for k, v in out.items()), name

"""Every recipe under configs/methods/ validates against the config schema, names registered
components that fit together (head x loss x method, frame dimension), and matches its generator."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import yaml

import ncollapse.methods as M
from ncollapse.config import config_from_dict
from ncollapse.data.longtail import exp_profile
from ncollapse.losses import check_loss_head, create_loss
from ncollapse.models import create_backbone, create_head

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "configs" / "methods").rglob("*.yaml"))
# head-class sizes of the LT subsets (SVHN's is approximate; only the profile's shape matters here)
N_MAX = {"fashion-mnist": 6000, "cifar10": 5000, "cifar100": 500, "svhn": 4948, "stl10": 500}
K = {"fashion-mnist": 10, "cifar10": 10, "cifar100": 100, "svhn": 10, "stl10": 10}
IN_CH = {"fashion-mnist": 1}


@cache
def _width(name: str, args: tuple) -> int:
    return create_backbone(name, **dict(args)).out_dim


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_there_are_recipes():
    names = {p.name for p in RECIPES}
    assert {"fmnist_lt_cal.yaml", "fmnist_lt_al.yaml", "fmnist_lt_allnc.yaml"} <= names
    assert len([p for p in RECIPES if p.parent.name == "paper"]) == 144


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_is_consistent(path):
    cfg = config_from_dict(_load(path))  # the trainer's schema
    ds = cfg.data.name
    counts = exp_profile(N_MAX[ds], K[ds], cfg.data.rho)
    loss_fn = create_loss(cfg.loss.name, counts=counts, **cfg.loss.params)
    check_loss_head(cfg.loss.name, cfg.model.head)
    m = M.create_method(cfg.method.name, **cfg.method.params)
    m.check_head(cfg.model.head)
    required = getattr(loss_fn, "required_head", None)
    assert required is None or cfg.model.head in required
    width = _width(
        cfg.model.backbone,
        tuple(sorted({"in_channels": IN_CH.get(ds, 3), **cfg.model.backbone_args}.items())),
    )
    head_args = dict(cfg.model.head_args)
    if M.head_needs_counts(cfg.model.head):
        head_args["counts"] = counts
    if cfg.model.head == "multicenter":
        fk = M.center_counts(head_args.get("mode", "cal"), K[ds], head_args["f"], counts=counts)
        dim = head_args.get("projection_dim", width)
        assert dim >= int(fk.sum()) + K[ds]
        if K[ds] > 10 or cfg.data.rho != 100:
            return  # dimension checked; building every frame (QR of d x 210..2100) is slow
    create_head(cfg.model.head, width, K[ds], **head_args)


def test_recipes_match_their_generator(method_configs):
    mod = method_configs
    for name, (_, cfg) in mod.FMNIST.items():
        assert yaml.safe_load((ROOT / "configs/methods" / f"{name}.yaml").read_text()) == cfg
    header, cfg = mod._paper("cifar100", "resnet50", "cal", True, 200)
    path = ROOT / "configs/methods/paper/cifar100_resnet50_cal_mixup_rho200.yaml"
    assert yaml.safe_load(path.read_text()) == cfg
    assert cfg["model"]["head_args"]["projection_dim"] == 2112  # 2048 < (20+1)*100

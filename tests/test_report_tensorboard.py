"""TensorBoard views: per-class figures and Gram heatmaps as images every NC epoch, and the run's
hyper-parameters with its final metrics in the HParams plugin (read back with EventAccumulator)."""

from __future__ import annotations

import pytest

from ncollapse.config import load_config
from ncollapse.report.tensorboard import IMAGE_TAGS, final_metrics, hparam_dict
from ncollapse.train import Trainer

pytest.importorskip("tensorboard", reason="TensorBoard is an optional extra (ncollapse[tb])")


def _events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run_dir / "tb"), size_guidance={"images": 0, "scalars": 0})
    ea.Reload()
    return ea


def test_tensorboard_images_and_hparams(tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    cfg = load_config(None, ["data.name=digits", "data.rho=10", "data.batch_size=64",
                             "model.backbone=mlp", "model.backbone_args={depth: 1, width: 16}",
                             "train.epochs=2", "train.progress=false", "run.tensorboard=true",
                             "eval.groups=ranges", "eval.ranges=[3,7]",
                             f"run.out_dir={tmp_path}", "run.name=tb"])  # fmt: skip
    res = Trainer(cfg).fit()
    ea = _events(res.run_dir)
    for tag in IMAGE_TAGS:  # one image per epoch, a real PNG of a readable size
        imgs = ea.Images(tag)
        assert [i.step for i in imgs] == [0, 1]
        assert imgs[-1].encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"
        assert imgs[-1].width >= 500 and imgs[-1].height >= 250
    content = ea.PluginTagToContent("hparams")
    assert set(content) >= {"_hparams_/experiment", "_hparams_/session_start_info"}
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["model.head"].string_value == "linear"
    assert hp["optim.lr"].number_value == pytest.approx(cfg.optim.lr)
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    metric_tags = {m.name.tag for m in exp.experiment.metric_infos}
    assert {"hparams/overall_acc", "hparams/NC1", "hparams/dist_SELI_W"} <= metric_tags
    # each HParams metric is also a scalar in the run, equal to the final record's value
    final = res.final
    acc = ea.Scalars("hparams/overall_acc")
    assert len(acc) == 1 and acc[0].value == pytest.approx(final["test_acc"], rel=1e-6)
    nc1 = ea.Scalars("hparams/NC1")[0].value
    assert nc1 == pytest.approx(final["nc"]["nc1"]["nc1"], rel=1e-6)


def test_hparam_dict_and_metrics():
    cfg = load_config(None, ["model.head=etf", "data.rho=100"])
    hp = hparam_dict(cfg)
    assert hp["model.head"] == "etf" and hp["data.rho"] == 100
    assert not any(k.startswith("run.") for k in hp)
    assert all(isinstance(v, bool | int | float | str) for v in hp.values())
    m = final_metrics({"test_acc": 0.5, "nc": {"nc1": {"nc1": float("nan")}}})
    assert m == {"hparams/overall_acc": 0.5}  # NaN and missing measures are left out

"""NCStats / SecondPass all_reduce and NCMetric.compute under a real 2-process gloo group."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ncollapse.metrics import NCMetric, NCStats, SecondPass, compute_all, statistics


def _data():
    rng = np.random.default_rng(0)
    K, d = 4, 6
    y = rng.integers(0, K, 90)
    y[:K] = np.arange(K)
    H = 3 * rng.normal(size=(K, d))[y] + rng.normal(size=(90, d))
    Z = H @ rng.normal(size=(d, K))
    centers = rng.normal(size=(K, d))
    W = rng.normal(size=(K, d))
    return K, H, y, Z, centers, W


def _worker(rank, world, init_file, out_file):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        K, H, y, Z, centers, W = _data()
        # uneven shards; rank 1 never sees class 0 after the first rows (empty classes are fine)
        idx = np.arange(len(y))[:37] if rank == 0 else np.arange(len(y))[37:]
        out = {}
        for pcs in (True, False):
            acc = NCStats(K, per_class_scatter=pcs, centers=centers, w0=W)
            acc.update(H[idx], y[idx], Z[idx])
            acc.all_reduce()
            st = acc.snapshot()
            out[f"scatter_{pcs}"] = st.scatter
            out[f"class_ss_{pcs}"] = st.class_ss
            out[f"nc_m2_{pcs}"] = st.nc_m2
            out[f"counts_{pcs}"] = st.counts
            out[f"logit_sums_{pcs}"] = st.logit_sums
        sp = SecondPass(st, W)
        sp.update(H[idx], y[idx])
        sp.all_reduce()
        out["agree"] = sp.result().agree
        out["proj_ss"] = sp.result().proj_ss["weighted"]
        # the scatter-free first pass + NC1 from the second pass, merged over workers
        acc = NCStats(K, scatter=False, per_class_scatter=False)
        acc.update(torch.as_tensor(H[idx], dtype=torch.float32), y[idx])
        acc.all_reduce()
        st_f = acc.snapshot()
        sp = SecondPass(st_f, W)
        sp.update(torch.as_tensor(H[idx], dtype=torch.float32), y[idx])
        sp.all_reduce()
        out["nc1_fast"] = np.array(compute_all(st_f, W, second=sp.result())["nc1"]["nc1"])
        out["class_ss_fast"] = st_f.class_ss
        m = NCMetric(K, W)
        m.update(torch.as_tensor(H[idx]), torch.as_tensor(y[idx]))
        res = m.compute()  # synced copy; the local state stays local
        out["nc1"] = np.array(res["nc1"]["nc1"])
        out["local_n"] = np.array(m.stats.snapshot().total)
        if rank == 0:
            np.savez(out_file, **out)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_all_reduce_equals_single_process(tmp_path):
    out_file = tmp_path / "out.npz"
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(out_file)), nprocs=2, join=True)
    got = np.load(out_file)
    K, H, y, Z, centers, W = _data()
    for pcs in (True, False):
        ref = statistics(H, y, K, logits=Z, per_class_scatter=pcs, centers=centers, w0=W)
        np.testing.assert_array_equal(got[f"counts_{pcs}"], ref.counts)
        np.testing.assert_allclose(got[f"scatter_{pcs}"], ref.scatter, rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(got[f"class_ss_{pcs}"], ref.class_ss, rtol=1e-12)
        np.testing.assert_allclose(got[f"nc_m2_{pcs}"], ref.nc_m2, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got[f"logit_sums_{pcs}"], ref.logit_sums, rtol=1e-12)
    from ncollapse.metrics import second_pass

    ref_st = statistics(H, y, K)
    ref_sp = second_pass(ref_st, [(H, y)], W)
    np.testing.assert_array_equal(got["agree"], ref_sp.agree)
    np.testing.assert_allclose(got["proj_ss"], ref_sp.proj_ss["weighted"], rtol=1e-12)
    H32 = H.astype(np.float32)
    st32 = statistics(H32, y, K)
    np.testing.assert_allclose(got["class_ss_fast"], st32.class_ss, rtol=1e-12)
    assert float(got["nc1_fast"]) == pytest.approx(compute_all(st32, W)["nc1"]["nc1"], rel=1e-12)
    assert float(got["nc1"]) == pytest.approx(compute_all(ref_st, W)["nc1"]["nc1"], rel=1e-10)
    assert int(got["local_n"]) == 37


def test_all_reduce_is_noop_without_process_group():
    acc = NCStats(3).update(np.eye(3), [0, 1, 2])
    before = acc.snapshot()
    acc.all_reduce()
    np.testing.assert_array_equal(acc.snapshot().sums, before.sums)

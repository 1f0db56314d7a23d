"""docs/toolchains.md's RLlib example, run as written against a Ray head started here on 127.0.0.1.

The block marked ``<!-- docs-test: run by tests/test_rllib.py -->`` is read from the doc (not copied) and run
as a driver script with ``RAY_ADDRESS`` pointing at a head of this test's own (``ray start --head`` with its
own port and ``--temp-dir``; token authentication as ``ray start`` sets it up when a token exists). A few
lines appended to the block report what it did: the iterations, the episode returns and objectives RLlib
logged, the env runners that sampled. The head is stopped through its own processes (never ``ray stop``:
other Ray instances may run on the machine).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from rayhead import free_port, head_logs, stop_ray_head

from equiglb.sweep.rayauth import token_available

pytest.importorskip("ray.rllib", reason="ray[rllib] is installed by the rllib extra and the lock")

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"   # the package (src/ layout)
DOC = REPO / "docs" / "toolchains.md"
MARKER = "<!-- docs-test: run by tests/test_rllib.py -->"

#: appended to the doc's block: what the driver reports (one JSON line)
REPORT = textwrap.dedent("""
    import json as _json
    print("REPORT " + _json.dumps({
        "gcs_address": ray.get_runtime_context().gcs_address,
        "iteration": result["training_iteration"],
        "num_env_runners": algo.env_runner_group.num_healthy_remote_workers(),
        "sampled_by": sorted(algo.env_runner_group.foreach_env_runner(lambda r: r.worker_index,
                                                                        local_env_runner=False)),
        "env_runners": {k: v for k, v in runners.items() if isinstance(v, (int, float))},
    }))
    algo.stop()
""")


def doc_block() -> str:
    """The python block that follows :data:`MARKER` in docs/toolchains.md."""
    text = DOC.read_text(encoding="utf-8")
    m = re.search(re.escape(MARKER) + r"\n```python\n(.*?)\n```\n", text, re.S)
    assert m, f"{DOC.relative_to(REPO)}: no python block after {MARKER!r}"
    return m.group(1) + "\n"


def test_doc_block_is_the_marked_python_block():
    code = doc_block()
    assert "PPOConfig" in code and "num_env_runners=2" in code and "algo.train()" in code


def test_rllib_doc_example_trains_ppo_with_two_env_runners_on_a_ray_head(tmp_path):
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.is_file():
        ray_bin = Path(shutil.which("ray") or "ray")
    port = free_port()
    # as a user would: no RAY_AUTH_MODE; `ray start` turns token authentication on by itself when a token
    # exists (~/.ray/auth_token), and the driver then needs RAY_AUTH_MODE=token before it imports ray
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = "1"
    ray_tmp = tempfile.mkdtemp(prefix="eqrl", dir="/tmp")   # short: Ray's socket paths must fit in 107 bytes
    script = tmp_path / "rllib_example.py"
    script.write_text(doc_block() + REPORT)
    start = subprocess.run([str(ray_bin), "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
                            "--num-cpus", "3", "--include-dashboard=false", "--temp-dir", ray_tmp],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    try:
        assert start.returncode == 0, start.stdout + start.stderr
        driver_env = {**env, "RAY_ADDRESS": f"127.0.0.1:{port}"}
        if token_available(driver_env):
            driver_env["RAY_AUTH_MODE"] = "token"
        try:
            out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=driver_env,
                                 cwd=tmp_path, timeout=300)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"the driver ran for more than 300 s:\n{exc.stdout!r:.3000}\n{exc.stderr!r:.5000}"
                        + head_logs(ray_tmp))
        output = (f"head:\n{start.stdout[-1500:]}\ndriver stdout:\n{out.stdout[-3000:]}\n"
                  f"driver stderr:\n{out.stderr[-5000:]}")
        assert out.returncode == 0, output + head_logs(ray_tmp)
        lines = out.stdout.splitlines()
        report = json.loads(next(line for line in lines if line.startswith("REPORT "))[len("REPORT "):])
        printed = [line.split() for line in lines if re.match(r"^\d+ ", line)]
    finally:
        stop_ray_head(ray_tmp, port)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert report["gcs_address"].endswith(f":{port}"), output              # the head of this test, not another
    assert [int(p[0]) for p in printed] == [1, 2, 3] and report["iteration"] == 3, output
    assert report["num_env_runners"] == 2 and report["sampled_by"] == [1, 2], output
    runners = report["env_runners"]
    # 3 iterations of 96 steps in episodes of 24 slots: 12 whole episodes
    assert runners["num_env_steps_sampled_lifetime"] == 3 * 96, runners
    assert runners["num_episodes_lifetime"] == 12 and runners["episode_len_mean"] == 24, runners
    ret, objective = runners["episode_return_mean"], runners["objective_usd_mean"]
    assert math.isfinite(ret) and ret < 0, runners
    assert ret == pytest.approx(-objective, rel=1e-12), runners              # the return is -J(x), docs/model.md §4
    for p in printed:                                                      # the doc's printed lines say the same
        assert float(p[1]) == pytest.approx(-float(p[2]), rel=1e-12), output

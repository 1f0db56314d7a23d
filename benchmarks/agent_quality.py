"""Agent quality: PPO trained on the eGLB-2022 train split, evaluated on its held-out test window.

    python benchmarks/agent_quality.py [--data-dir ../shared/traces/eglb-2022] [-n 1000000] [--seed 0]
                                       [-- extra train.py flags]

Runs ``train.py --algo ppo --env equiglb/EquitableGLB-eglb2022-v0`` (all baselines in the final
table) and prints the agent's objective J(x) (USD), its gap to the offline optimum and to online
eGLB, whether it beats every equity-oblivious baseline, and the wall time. Targets (issue 5):
beat every equity-oblivious baseline, within 10% of the offline optimum.

``--protocol calibrated-synthetic`` uses the train split differently: it calibrates the synthetic
generator (``equiglb.traces.calibrate``) on the eGLB-2022 *train split only*, trains PPO on 1,440 h of
generated traces (episodes as long as the test window), and evaluates the model on the real test
window. The test window's data is used only for the evaluation in both protocols.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: Baselines that ignore the equity terms of the objective.
OBLIVIOUS = ("min-cost", "min-carbon", "min-water", "nearest", "proportional", "random")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "traces" / "eglb-2022"),
                   help="folder of the eGLB-2022 traces")
    p.add_argument("-n", "--n-timesteps", type=int, default=None, help="training steps (default: ppo.yml)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("-f", "--log-folder", default=None, help="where the run folder goes (default: a temp folder)")
    p.add_argument("--protocol", choices=("eglb-train", "calibrated-synthetic"), default="eglb-train",
                   help="train on the eGLB-2022 train split itself, or on synthetic traces calibrated to it")
    p.add_argument("extra", nargs="*", help="more train.py flags (after --)")
    args = p.parse_args(argv)

    from equiglb.agents.cli import main as train_main

    log = Path(args.log_folder or tempfile.mkdtemp(prefix="agent_quality_"))
    log.mkdir(parents=True, exist_ok=True)
    if args.protocol == "eglb-train":
        env_flags = ["--env", "equiglb/EquitableGLB-eglb2022-v0", "--env-kwargs", f"data_dir={args.data_dir}"]
    else:
        import equiglb
        from equiglb.traces.calibrate import calibrate_scenario

        real = equiglb.load_scenario("eglb-2022", data_dir=args.data_dir)
        params_file = log / "params_eglb_train.json"
        calibrate_scenario(real.split("train")).to_json(params_file)
        env_flags = ["--env", "equiglb/EquitableGLB-v0", "--env-kwargs", f"scenario_options={{params: {params_file}}}",
                     f"episode_length={real.splits['test'][1]}", "random_start=true", "--baselines"]
    flags = ["--algo", "ppo", *env_flags, "--seed", str(args.seed), "-f", str(log), *args.extra]
    if args.n_timesteps:
        flags += ["-n", str(args.n_timesteps)]
    t0 = time.perf_counter()
    code = train_main(flags)
    run = max((log / "ppo").iterdir(), key=lambda d: d.stat().st_mtime) if code == 0 else None
    if run is not None and args.protocol == "calibrated-synthetic":
        from equiglb.agents.evaluate import evaluate_models

        evaluate_models([run], env_id="equiglb/EquitableGLB-eglb2022-v0", env_kwargs={"data_dir": args.data_dir},
                        split="test", out_dir=run / "eval", names=["ppo (agent)"], progress=False)
    wall = time.perf_counter() - t0
    if code != 0:
        return code
    rows = {r["policy"]: r for r in json.loads((run / "eval" / "table.json").read_text())}
    agent = rows.pop("ppo (agent)")
    J = agent["objective"]
    best_oblivious = min((rows[n] for n in OBLIVIOUS if n in rows), key=lambda r: r["objective"])
    print(f"\n=== agent quality on eglb-2022 (test window), protocol {args.protocol} ===")
    print(f"run folder:             {run}")
    print(f"PPO objective J(x):     {J:,.0f} USD")
    print(f"gap to offline optimum: {100 * agent['gap_to_offline']:+.2f}%  (offline {rows['offline']['objective']:,.0f})")
    if "online-eglb" in rows:
        print(f"gap to online eGLB:     {100 * (J / rows['online-eglb']['objective'] - 1):+.2f}%  "
              f"(online eGLB {rows['online-eglb']['objective']:,.0f})")
    print(f"best oblivious:         {best_oblivious['policy']} {best_oblivious['objective']:,.0f}  -> PPO "
          f"{'beats' if J < best_oblivious['objective'] else 'does NOT beat'} every equity-oblivious baseline")
    print(f"within 10% of offline:  {'yes' if agent['gap_to_offline'] <= 0.10 else 'no'}")
    print(f"wall time (train + evaluation of all baselines): {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

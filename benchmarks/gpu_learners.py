#!/usr/bin/env python
"""Do soft_q's and boot_dqn's learners run on a GPU, and how fast against the CPU?

For each algorithm and each num_gpus_per_learner in --gpus (num_learners=0: the
learner lives in this process), and for soft_q also num_learners=1 with
--remote-gpus (a remote learner actor), builds the algorithm with the Python API, trains
--warmup untimed iterations, then --iters timed ones, and prints one JSON line
per case: the learner module's device, env steps/s and SGD updates/s of the
whole train() loop, and whether qf_loss stayed finite. No MLflow, no CLI.

    python benchmarks/gpu_learners.py --gpus 0 --remote-gpus 0 --warmup 1 --iters 1   # CPU smoke test
    python benchmarks/gpu_learners.py --out /tmp/gpu_learners.jsonl  # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback

from harness.rllib import module_devices

CARTPOLE = "CartPole-v1"
DEEP_SEA = "rlfrontier/DeepSea-v0"
SEED = 0


def make_config(algo: str, gpus: float, num_learners: int):
    from rlfrontier import envs

    if algo == "soft_q":
        from rlfrontier.algorithms.soft_q import SoftQConfig

        config, env, env_config = SoftQConfig(), CARTPOLE, {}
    else:
        from rlfrontier.algorithms.boot_dqn import BootDQNConfig

        config, env = BootDQNConfig(), DEEP_SEA
        env_config = envs.with_run_seed(env, {"size": 10}, SEED)
        envs.register_envs()
        envs.register_with_ray(env)
    return (
        config.environment(env, env_config=env_config)
        .debugging(seed=SEED)
        .learners(num_learners=num_learners, num_gpus_per_learner=gpus)
    )


def run_case(algo_name: str, gpus: float, num_learners: int, args) -> dict:
    from ray.rllib.core import DEFAULT_MODULE_ID
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, LEARNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    from rlfrontier.offpolicy import NUM_UPDATES_THIS_STEP

    row = {"algo": algo_name, "num_gpus_per_learner": gpus, "num_learners": num_learners}
    t0 = time.perf_counter()
    algo = make_config(algo_name, gpus, num_learners).build_algo()
    row["build_s"] = round(time.perf_counter() - t0, 2)
    try:
        row["module_device"] = module_devices(algo)
        row["device"] = "cuda" if all(d.startswith("cuda") for d in row["module_device"]) else "cpu"
        if gpus > 0:
            assert row["device"] == "cuda", f"num_gpus_per_learner={gpus} but parameters on {row['module_device']}"

        def lifetime(result) -> int:
            return int(result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME])

        start = 0
        for _ in range(args.warmup):  # past learning starts; CUDA/cuDNN warm-up
            start = lifetime(algo.train())
        updates, losses = 0, []
        t0 = time.perf_counter()
        for _ in range(args.iters):
            result = algo.train()
            updates += int(result.get(NUM_UPDATES_THIS_STEP) or 0)
            loss = result.get(LEARNER_RESULTS, {}).get(DEFAULT_MODULE_ID, {}).get("qf_loss")
            if loss is not None:
                losses.append(float(loss))
        wall = time.perf_counter() - t0
        steps = lifetime(result) - start
        row.update(
            iterations=args.iters,
            env_steps=steps,
            sgd_updates=updates,
            wall_s=round(wall, 3),
            env_steps_per_s=round(steps / wall, 1),
            sgd_updates_per_s=round(updates / wall, 1),
            qf_loss_last=losses[-1] if losses else None,
            qf_loss_finite=bool(losses) and all(math.isfinite(x) for x in losses),
        )
    finally:
        algo.stop()
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", default="soft_q,boot_dqn")
    parser.add_argument("--gpus", default="1,0", help="num_gpus_per_learner values, comma-separated")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per case")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first (learning starts at 1000 steps)")
    parser.add_argument("--remote-gpus", type=float, default=1.0,
                        help="num_gpus_per_learner of the soft_q case with num_learners=1 (a remote learner)")
    parser.add_argument("--no-remote", action="store_true", help="skip the soft_q case with num_learners=1")
    parser.add_argument("--out", help="also append the JSON lines to this file")
    args = parser.parse_args()

    import ray
    import torch

    gpus_list = [float(g) for g in args.gpus.split(",")]
    cases = [(a, g, 0) for a in args.algos.split(",") for g in gpus_list]
    if not args.no_remote and "soft_q" in args.algos:
        cases.append(("soft_q", args.remote_gpus, 1))

    info = {
        "torch": torch.__version__,
        "ray": ray.__version__,
        "python": sys.version.split()[0],
        "cuda_available": torch.cuda.is_available(),
        "gpu_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
    }
    ray.init(address="local", num_cpus=4, num_gpus=1 if torch.cuda.is_available() else 0, include_dashboard=False)
    failed = 0
    out = open(args.out, "a") if args.out else None

    def emit(line: dict) -> None:
        text = json.dumps(line)
        print(text, flush=True)
        if out:
            out.write(text + "\n")
            out.flush()

    try:
        emit({"info": info})
        for algo_name, gpus, learners in cases:
            try:
                line = run_case(algo_name, gpus, learners, args)
                failed += not line.get("qf_loss_finite", False)
            except Exception as exc:  # noqa: BLE001 - report it and go on to the next case
                failed += 1
                line = {"algo": algo_name, "num_gpus_per_learner": gpus, "num_learners": learners,
                        "error": f"{type(exc).__name__}: {exc}",
                        "traceback_tail": traceback.format_exc().splitlines()[-12:]}
            emit(line)
        emit({"done": True, "failed_cases": failed, "mlflow_imported": "mlflow" in sys.modules})
    finally:
        if out:
            out.close()
        ray.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

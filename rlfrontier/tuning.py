"""What a search adds to a run: Tune's search domains, scheduler and searcher, and
the check of every search range at its ends before Ray starts.

The search is part of the run's description (rlfrontier.spec.RunSpec:
search_space, num_samples, metric, mode, scheduler, searcher);
`rlfrontier.runs.run` runs it, as it runs `train`'s one trial.
tune_configs/README.md has the file's long form.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

from rlfrontier import configure
from rlfrontier.spec import SEED_MAX, Pbt, RunSpec, first_line
from rlfrontier.validation import BadInput


def check_extremes(spec: RunSpec, base: AlgorithmConfig) -> None:
    """Builds the config at both ends of every range and at every choice: a value the
    algorithm's validate() rejects is BadInput now, not a failed trial later."""
    for key, dist in spec.search_space.items():
        where = ("search_space", key, dist.kind)
        if key == "seed":
            if any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= SEED_MAX for v in dist.args):
                raise spec.bad(where, f"must hold seeds: integers in [0, {SEED_MAX}]", value=dist.args)
            continue
        for value in dist.extremes():
            probe = configure.clone_config(base)
            try:
                configure.apply_overrides(probe, {key: value}, source=spec.origin.name(("search_space", key)))
            except BadInput as exc:  # an unknown or read-only setting: the message names it
                raise BadInput(f"{spec.origin.prefix}{exc}") from None
            try:
                probe.validate()
            except BadInput as exc:
                raise spec.bad(where, f"includes a value the algorithm rejects: {exc}", value=dist.args) from None
            except (ValueError, TypeError, KeyError) as exc:
                raise spec.bad(where, f"includes a value the algorithm rejects: {key}={value!r}: {first_line(exc)}",
                               value=dist.args) from None


def param_space(spec: RunSpec, *, seeded: bool) -> dict[str, Any]:
    """Tune's param_space: one domain per searched setting (dotted keys stay flat, so
    they name the trial's MLflow params as written) and, unless `seeded`, a seed per trial."""
    from ray import tune

    space = {key: dist.to_tune() for key, dist in spec.search_space.items()}
    if not seeded and "seed" not in space:
        space["seed"] = tune.randint(0, SEED_MAX)
    return space


def scheduler(spec: RunSpec):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    opts = {k: v for k, v in spec.scheduler.model_dump(exclude={"type"}).items() if v is not None}
    if spec.scheduler.type == "asha":
        return ASHAScheduler(time_attr="training_iteration", **opts)
    if isinstance(spec.scheduler, Pbt):
        return PopulationBasedTraining(
            time_attr="training_iteration",
            # A result without the metric (no evaluation yet) is skipped, and
            # the trial perturbed at its next result that has it.
            require_attrs=False,
            hyperparam_mutations={k: d.to_tune() for k, d in spec.search_space.items()},
            **opts,
        )
    return FIFOScheduler()


def searcher(spec: RunSpec):
    if spec.searcher.type == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch()
    return None

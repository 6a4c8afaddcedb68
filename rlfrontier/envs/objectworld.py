"""ObjectWorld: Levine et al.'s non-linear-reward benchmark for IRL, with known dynamics.

From Levine, Popovic & Koltun (2011), "Nonlinear inverse reinforcement learning with Gaussian processes", Sect. 6,
used again by Wulfmeier et al. (2015, deep MaxEnt IRL). An N x N slippery grid (dynamics, observation, reward
convention and episode loop as in `gridworld.TabularGridEnv`) holds objects at distinct random cells; each object has
an inner and an outer colour, each uniform among C colours. The reward depends on the objects nearby in a way no
linear function of the features expresses, which is what a deep (non-linear) MaxEnt IRL reward must recover.

Layout (layout_seed l): rng = np.random.default_rng(l); cells = rng.choice(N^2, num_objects, replace=False);
inner = rng.integers(C, size=num_objects); outer = rng.integers(C, size=num_objects). Distances are Euclidean
between (row, column) cell coordinates.

True reward (Levine et al.): +1 within distance 3 of an object of outer colour 0 and within distance 2 of one of
outer colour 1; -1 within distance 3 of outer colour 0 only; 0 otherwise. "Within" is Euclidean distance <= d
(the paper's words; a copy of Levine's toolkit tests < d, which changes 4-9 of 100 states' rewards on 10 x 10
worlds), and slip follows GridWorld's (a uniformly random one of the 5 actions, the intended one included, with
probability `slip`), not the toolkit's (another action).

Features (`features`):
- "continuous": distance to the nearest object of inner colour c, for c = 0..C-1, then to the nearest of outer
  colour c, for c = 0..C-1 (F = 2C); N * sqrt(2) (more than any distance in the grid) where no object has that
  colour.
- "discrete": Levine's binary indicators "an object of inner (then outer) colour c within distance d", for
  c = 0..C-1 and d = 1..N (F = 2CN), ordered colour-major: column (kind * C + c) * N + (d - 1), kind 0 inner, 1 outer.

Defaults chosen here (Levine used 32 x 32 with C = 2 and 30% slip): size 16, num_colours 2, slip 0.3,
num_objects = max(1, size^2 // 16) (16 objects at size 16, 64 at Levine's 32; at this density a layout has a
mix of +1, -1 and 0 states, about 17% / 37% / 47% on average; layout_seed 0 at size 16 has 14% / 17% / 70%),
horizon = 2 * size, layout_seed 0.
"""

from __future__ import annotations

import numpy as np

from rlfrontier.envs.gridworld import TabularGridEnv, cell_coordinates, check_choice, check_int

OBJECT_FEATURES = ("continuous", "discrete")
# Levine et al. Sect. 6: the radii of the reward rule.
NEAR_OUTER_0 = 3.0
NEAR_OUTER_1 = 2.0


def nearest_distances(*, distances: np.ndarray, colours: np.ndarray, num_colours: int, absent: float) -> np.ndarray:
    """Distance from every state to the nearest object of each colour.

    Args:
        distances: (S, M) state-to-object distances.
        colours: (M,) one colour per object (inner or outer).
        num_colours: C.
        absent: the distance reported for a colour no object has.

    Returns:
        (S, C) float64.
    """
    has_colour = colours[None, :] == np.arange(num_colours)[:, None]  # (C, M)
    masked = np.where(has_colour[None, :, :], distances[:, None, :], absent)  # (S, C, M)
    return masked.min(axis=2, initial=absent)


def levine_reward(*, outer_distances: np.ndarray) -> np.ndarray:
    """Levine et al.'s ObjectWorld reward from (S, C) nearest-outer-colour distances: (S,) in {-1, 0, 1}."""
    near_0 = outer_distances[:, 0] <= NEAR_OUTER_0
    near_1 = outer_distances[:, 1] <= NEAR_OUTER_1
    return np.where(near_0 & near_1, 1.0, np.where(near_0, -1.0, 0.0))


class ObjectWorldEnv(TabularGridEnv):
    """Slippery N x N grid with coloured objects and Levine et al.'s non-linear reward (module docstring).

    Attributes (besides TabularGridEnv's):
        object_cells: (M,) int64, the state index of every object.
        inner_colours, outer_colours: (M,) int64.
        feature_names: F strings naming the columns of `state_features`.
    """

    def __init__(
        self,
        *,
        size: int = 16,
        num_objects: int | None = None,
        num_colours: int = 2,
        slip: float = 0.3,
        horizon: int | None = None,
        layout_seed: int = 0,
        features: str = "continuous",
    ) -> None:
        size = check_int("size", size, minimum=2)
        num_states = size * size
        if num_objects is None:
            num_objects = max(1, num_states // 16)
        num_objects = check_int("num_objects", num_objects, minimum=1)
        if num_objects > num_states:
            raise ValueError(f"num_objects={num_objects} is out of range: need <= size^2 = {num_states}")
        # Colour 0 and colour 1 both appear in the reward rule.
        self.num_colours = check_int("num_colours", num_colours, minimum=2)
        self.layout_seed = check_int("layout_seed", layout_seed, minimum=0)
        self.features = check_choice("features", features, OBJECT_FEATURES)
        rng = np.random.default_rng(self.layout_seed)
        self.object_cells = rng.choice(num_states, size=num_objects, replace=False).astype(np.int64)
        self.inner_colours = rng.integers(self.num_colours, size=num_objects)
        self.outer_colours = rng.integers(self.num_colours, size=num_objects)
        coords = cell_coordinates(size).astype(np.float64)
        distances = np.linalg.norm(coords[:, None, :] - coords[self.object_cells][None, :, :], axis=2)  # (S, M)
        absent = size * np.sqrt(2.0)
        inner = nearest_distances(
            distances=distances, colours=self.inner_colours, num_colours=self.num_colours, absent=absent
        )
        outer = nearest_distances(
            distances=distances, colours=self.outer_colours, num_colours=self.num_colours, absent=absent
        )
        nearest = np.concatenate([inner, outer], axis=1)  # (S, 2C)
        kinds = [f"{kind}_{c}" for kind in ("inner", "outer") for c in range(self.num_colours)]
        if self.features == "continuous":
            state_features = nearest
            self.feature_names = tuple(f"distance_{name}" for name in kinds)
        else:
            radii = np.arange(1, size + 1, dtype=np.float64)
            state_features = (nearest[:, :, None] <= radii[None, None, :]).reshape(num_states, -1).astype(np.float64)
            self.feature_names = tuple(f"{name}_within_{d}" for name in kinds for d in range(1, size + 1))
        super().__init__(
            size=size,
            slip=slip,
            horizon=2 * size if horizon is None else horizon,
            state_features=state_features,
            true_reward=levine_reward(outer_distances=outer),
        )

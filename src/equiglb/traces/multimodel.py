"""The multi-model scenario ``"synthetic-multimodel"``: K = 3 language models of different sizes.

The social dimension of Li, Liu, Yang, Ren, *Towards Socially and Environmentally Responsible AI*
(arXiv 2407.05176): a request can be served by a large, accurate, energy-hungry model or by a
smaller, cheaper and less accurate one, and the regions whose nearby sites only host the small model
bear the quality loss.

Models: LLaMA-1 7B, 13B and 65B (Touvron et al., *LLaMA: Open and Efficient Foundation Language
Models*, arXiv 2302.13971, 2023).

* Quality loss s[k] = (best MMLU accuracy - MMLU accuracy of k) / 100, with the 5-shot MMLU scores
  of the LLaMA paper (Table 9): 7B 35.1 %, 13B 46.9 %, 65B 63.4 %, so s = (0.283, 0.165, 0).
* Energy per unit of load e[k] (MWh per load unit). The load unit is the K = 1 unit of eGLB
  (1 load unit = the request volume whose service by the *largest* model draws 1 MWh in one hour,
  i.e. one site's capacity; at the workload peak the fleet is full), so e[65B] = 1. The smaller
  models serve the same requests with e[k] = params[k] / params[65B] (0.108, 0.2, 1): Samsi et
  al., *From Words to Watts: Benchmarking the Energy Costs of Large Language Model Inference*
  (IEEE HPEC 2023, arXiv 2310.03003) measured LLaMA 7B/13B/65B on V100 and A100 GPUs, with energy
  per output token of about 3-4 J for 65B and growing with model size; autoregressive decoding is
  memory-bandwidth bound (every weight is read once per token), which gives the proportional
  scaling used here (an assumption, not a measured ratio). Only the ratios matter (the unit is
  normalized). Luccioni, Jernite, Strubell, *Power Hungry Processing: Watts Driving the Cost of AI
  Deployment?* (ACM FAccT 2024, arXiv 2311.16863) likewise find the inference energy of generative
  models growing with model size. Replace e with your own measurements through the
  ``energy_per_unit=`` option.
* Hosting: the US and European sites host all three models; Japan and Singapore host only the 7B
  model. With the eGLB partial-connection mask (Japan and Singapore reach only Nevada and Asia),
  the Asian regions can get the 65B model only from Nevada, so cost-aware routing concentrates the
  quality loss on them.
* Feasibility: every region reaches its own site, and e <= 1 = capacity per site while each
  region's demand is <= 1, so serving every region at its own site is always feasible.

Default weights: q = 2, the eGLB μ_c = 1500 USD/t and μ_w = 60 USD/m³, and
μ_s = MU_SOCIAL_USD_PER_HOUR x hours. Why: S[j] is an *average* quality loss (unitless, it does not
grow with the horizon), while energy cost grows with the number of hours. Serving every request of
every region by the 7B instead of the 65B model saves about Σ_t,j λ·(e_65B - e_7B)·p̄ in energy cost
(mean demand 0.638 per region, 10 regions, mean price p̄ ≈ 162 USD/MWh: ≈ 920 USD per hour) and adds
μ_s·‖s_7B·1‖_2 = μ_s·0.895 of social cost. MU_SOCIAL_USD_PER_HOUR = 1040 USD/h makes these equal, so
neither "always the small model" nor "always the large model" is optimal and the social term
matters. The common ``horizon=`` option cuts the traces but keeps μ_s: pass ``mu_social=`` to rescale.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from equiglb.scenario import Weights
from equiglb.traces.fetch import EGLB_PARTIAL_MASK as PARTIAL_MASK
from equiglb.traces.sites import EGLB_SITES
from equiglb.traces.synthetic import SYNTHETIC_HOURS, synthetic_scenario
from equiglb.validate import as_bool, as_float_array

__all__ = ["MODEL_NAMES", "MODEL_PARAMS_B", "MMLU_ACCURACY", "ENERGY_PER_UNIT", "QUALITY_LOSS",
           "SMALL_ONLY_SITES", "PARTIAL_MASK", "MU_SOCIAL_USD_PER_HOUR", "multimodel_scenario"]

MODEL_NAMES: tuple[str, ...] = ("llama-7b", "llama-13b", "llama-65b")
#: Parameters, billions.
MODEL_PARAMS_B = np.array([6.7, 13.0, 65.2])
#: 5-shot MMLU accuracy (%) from Touvron et al. 2023, Table 9.
MMLU_ACCURACY = np.array([35.1, 46.9, 63.4])
#: e[k], MWh per load unit (1 for the largest model; proportional to parameter count).
ENERGY_PER_UNIT = MODEL_PARAMS_B / MODEL_PARAMS_B.max()
#: s[k] = (best accuracy - accuracy[k]) / 100.
QUALITY_LOSS = (MMLU_ACCURACY.max() - MMLU_ACCURACY) / 100.0
#: Sites that host only the smallest model.
SMALL_ONLY_SITES: tuple[str, ...] = ("Japan", "Singapore")
#: μ_s per hour of horizon (USD per unit of ‖S‖_2 per hour); see the module docstring.
MU_SOCIAL_USD_PER_HOUR = 1040.0



def multimodel_scenario(seed: int = 0, hours: int = SYNTHETIC_HOURS, params=None, start: str | None = None,
                        full_connection: bool = False, energy_per_unit=None, quality_loss=None,
                        name: str = "synthetic-multimodel"):
    """The synthetic default traces with K = 3 LLaMA models (see the module docstring).

    Args:
        seed, hours, params, start: as for :func:`equiglb.traces.synthetic.synthetic_scenario`.
        full_connection: use the full mask instead of the eGLB partial-connection mask.
        energy_per_unit: override e[k] (MWh per load unit, 3 values).
        quality_loss: override s[k] (3 values).
    """
    full_connection = as_bool("full_connection", full_connection)
    base = synthetic_scenario(seed=seed, hours=hours, params=params, start=start, name=name)
    if base.site_names != EGLB_SITES:
        raise ValueError(f"{name}: the multi-model scenario needs the ten eGLB sites, got {base.site_names}")
    hosting = np.ones((base.N, len(MODEL_NAMES)), bool)
    for site in SMALL_ONLY_SITES:
        hosting[base.site_names.index(site), 1:] = False
    mask = np.ones((base.N, base.J), bool) if full_connection else PARTIAL_MASK
    weights = Weights(mu_carbon=1500.0, mu_water=60.0, mu_social=MU_SOCIAL_USD_PER_HOUR * int(hours), q=2.0)
    return dataclasses.replace(
        base, model_names=MODEL_NAMES, hosting=hosting, mask=mask,
        energy_per_unit=(ENERGY_PER_UNIT if energy_per_unit is None
                         else as_float_array("energy_per_unit", energy_per_unit, (len(MODEL_NAMES),), lo=0.0)),
        quality_loss=(QUALITY_LOSS if quality_loss is None
                      else as_float_array("quality_loss", quality_loss, (len(MODEL_NAMES),), lo=0.0)),
        weights=weights,
    )

"""`python run.py bench steps`: one training step (forward + backward + Adam) per transform kind, side by side.

Two models, every kind of `monarch_core.TRANSFORM_KINDS` (fft, dense, monarch, diag, …):
  fno   the Navier–Stokes FNO: pde.build_fno(kind, n_modes=(24, 22), in_channels=10, out_channels=1,
        hidden_channels=20, n_layers=4, grid_size=(64, 64)), batch 20 of 64² inputs, the training
        loss (relative L2 per frame, summed: pde's LpLoss convention)
  mri   the unrolled network "unrolled-<kind>" of mri.recon.models at the training defaults (scale
        "small", batch 4) on simulated 64² slices with 6 coils (the protocol-cpu preset's shape),
        complex L1 loss
  modl  the same with CG data consistency ("modl-<kind>", the MRI studies' network)
  ns    the fno model's whole Navier–Stokes rollout as `pde study ns-gpu` trains it (pde's Predictor:
        t_out = 40 frames, one FNO call each on the last 10): n_train / batch of these steps are one
        epoch of that study (`--models ns`; not in the default list: ~40 FNO steps each)
Inputs are random tensors of the right shapes (speed does not depend on the values). The optimiser is
Adam with the training engine's parameter groups, the step the engine's (common.training.autocast +
LossScaler, so --amp on CUDA is the AMP training step). All steps are timed interleaved round by round
(common.timing.interleaved_times) in one process; ratios are to the "fft" step of the same model.

Goals (reported, never tuned for): the Monarch step ≤ 1.15× the FFT step for the FNO (issue 22's bar
at the NS defaults, on an idle CPU) and ≤ 1.3× for the MRI network. When one is
missed, both steps are profiled briefly (torch.profiler) and the top operators are written to the
markdown, so it says where the time goes.
"""
from __future__ import annotations

import functools

import torch

from benchmarks.cli import DEFAULT_STEP_MODELS
from common.bench_results import refuse_overwrite, write_results
from common.device import resolve_device
from common.environment import describe_environment
from common.tables import markdown_table
from common.timing import interleaved_times

#: the Navier–Stokes FNO of the paper comparison (pde's defaults)
FNO_SETTINGS = {"batch": 20, "hidden_channels": 20, "grid": 64, "n_modes": (24, 22), "n_layers": 4,
                "in_channels": 10, "out_channels": 1}
#: the rollout of the FNO paper's ν = 1e-3 setting (10 → 40 frames), on fno's network
NS_T_OUT = 40
#: mri training's defaults (batch 4, scale "small") on the protocol-cpu preset's slices (64², 6 coils)
MRI_SETTINGS = {"batch": 4, "grid": 64, "coils": 6, "scale": "small"}
#: (model, kind compared with fft, maximum time ratio)
GOALS = (("fno", "monarch", 1.15), ("mri", "monarch", 1.3))
MODELS = DEFAULT_STEP_MODELS


def _training_step(model, loss_of_batch, device: torch.device, amp: bool, transform_types: tuple):
    """A closure doing one training step of `model` as the engine does (zero_grad, autocast forward,
    loss, scaled backward, Adam step)."""
    from common.training import LossScaler, autocast, parameter_groups

    optimizer = torch.optim.Adam(parameter_groups(model, transform_types, 1e-3, 1e-3, 0.0))
    scaler = LossScaler(amp and device.type == "cuda")

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, amp):
            loss = loss_of_batch(model)
        scaler.backward_and_step(loss.float(), optimizer)

    return step


def _fno(kind: str, device, s: dict, seed: int):
    """fno's network for transform `kind` at settings `s` (FNO_SETTINGS keys), seeded; needs neuraloperator."""
    from pde import build_fno

    torch.manual_seed(seed)
    return build_fno(kind, n_modes=s["n_modes"], in_channels=s["in_channels"], out_channels=s["out_channels"],
                     hidden_channels=s["hidden_channels"], n_layers=s["n_layers"],
                     grid_size=(s["grid"], s["grid"])).to(device)


def _frame_l2_step(model, x, y, device, amp: bool):
    """The training step of `model` on (x, y) with pde's loss: relative L2 of each predicted frame, summed
    (LpLoss, reduction sum)."""
    from monarch_core import LearnableDFT

    def loss(net):
        pred = net(x).float()
        return ((pred - y).flatten(2).norm(dim=2) / y.flatten(2).norm(dim=2)).sum()

    return _training_step(model, loss, device, amp, (LearnableDFT,))


def fno_step(kind: str, device, amp: bool = False, settings: dict | None = None, seed: int = 0):
    """One FNO training step (see module docstring) for transform `kind`; needs neuraloperator.
    Inputs x (batch, in_channels, grid, grid), targets y (batch, out_channels, grid, grid)."""
    s = {**FNO_SETTINGS, **(settings or {})}
    model = _fno(kind, device, s, seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(s["batch"], s["in_channels"], s["grid"], s["grid"], generator=gen).to(device)
    y = torch.randn(s["batch"], s["out_channels"], s["grid"], s["grid"], generator=gen).to(device)
    return _frame_l2_step(model, x, y, device, amp), model


def mri_step(kind: str, device, amp: bool = False, settings: dict | None = None, seed: int = 0,
             family: str = "unrolled"):
    """One training step of "<family>-<kind>" (mri.recon.models: unrolled, or modl for CG data consistency,
    whose every step applies A and Aᴴ cg_iters times) on simulated slices: kspace and maps
    (batch, coils, grid, grid) complex64, a random mask (batch, grid, grid) at acceleration ≈ 4 with a
    fully sampled 8×8 centre, targets (batch, grid, grid) complex64; complex L1 loss."""
    from mri.recon.losses import reconstruction_loss
    from mri.recon.models import build_model
    from monarch_core import LearnableDFT

    s = {**MRI_SETTINGS, **(settings or {})}
    b, c, g = s["batch"], s["coils"], s["grid"]
    torch.manual_seed(seed)
    model = build_model(f"{family}-{kind}", (g, g), s["scale"]).to(device)
    gen = torch.Generator().manual_seed(seed)
    maps = torch.randn(b, c, g, g, dtype=torch.complex64, generator=gen)
    maps = maps / maps.abs().pow(2).sum(dim=1, keepdim=True).sqrt()  # Σ_c |S_c|² = 1, as ESPIRiT maps
    mask = (torch.rand(b, g, g, generator=gen) < 0.25).float()
    mask[:, g // 2 - 4:g // 2 + 4, g // 2 - 4:g // 2 + 4] = 1.0
    kspace = torch.randn(b, c, g, g, dtype=torch.complex64, generator=gen) * mask.unsqueeze(1)
    target = torch.randn(b, g, g, dtype=torch.complex64, generator=gen)
    kspace, maps, mask, target = (t.to(device) for t in (kspace, maps, mask, target))

    def loss(net):
        return reconstruction_loss("l1", net(kspace, maps, mask), target)

    return _training_step(model, loss, device, amp, (LearnableDFT,)), model


def ns_step(kind: str, device, amp: bool = False, settings: dict | None = None, seed: int = 0):
    """One training step of the Navier–Stokes rollout (see module docstring) for transform `kind`, on fno_step's
    network: inputs (batch, in_channels, grid, grid), targets (batch, t_out, grid, grid); the loss is pde's
    (relative L2 of each predicted frame, summed)."""
    from pde.experiments.problems import Predictor

    s = {**FNO_SETTINGS, **(settings or {})}
    t_out = int(s.pop("t_out", NS_T_OUT))
    model = Predictor(_fno(kind, device, s, seed), autoregressive=True, t_out=t_out)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(s["batch"], s["in_channels"], s["grid"], s["grid"], generator=gen).to(device)
    y = torch.randn(s["batch"], t_out, s["grid"], s["grid"], generator=gen).to(device)
    return _frame_l2_step(model, x, y, device, amp), model


BUILDERS = {"fno": fno_step, "mri": mri_step, "modl": functools.partial(mri_step, family="modl"), "ns": ns_step}
#: the settings each model's step takes (MoDL: the unrolled network's, ns: the FNO's, so the rows compare)
SETTINGS_OF = {"fno": "fno", "mri": "mri", "modl": "mri", "ns": "fno"}


def build_steps(device, models=MODELS, kinds=None, amp: bool = False, settings: dict | None = None):
    """({"<model>/<kind>": step closure}, {"<model>/<kind>" or "<model>": error text},
    {"<model>/<kind>": parameter count}). A model or kind that cannot be built or fails its first
    step is recorded with its error; the others still run."""
    from monarch_core import TRANSFORM_KINDS

    kinds = tuple(kinds or TRANSFORM_KINDS)
    steps, errors, params = {}, {}, {}
    for model_name in models:
        for kind in kinds:
            key = f"{model_name}/{kind}"
            try:
                step, model = BUILDERS[model_name](kind, device, amp, (settings or {}).get(SETTINGS_OF[model_name]))
                step()  # the first call also checks that the step runs at all
            except Exception as error:  # e.g. neuraloperator missing, or a kind that fails under AMP
                errors[key] = f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
                continue
            steps[key] = step
            params[key] = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
    return steps, errors, params


def measure_steps(device, models=MODELS, kinds=None, amp: bool = False, rounds: int = 10, warmup: int = 2,
                  settings: dict | None = None) -> dict:
    """{"rows": [{model, kind, seconds, ratio_to_fft, parameters} | {model, kind, error}], ...}: every
    step timed interleaved round by round (median over `rounds`)."""
    steps, errors, params = build_steps(device, models, kinds, amp, settings)
    seconds = interleaved_times(steps, device, rounds, warmup) if steps else {}
    rows = []
    for key in list(steps) + [k for k in errors if k not in steps]:
        model_name, kind = key.split("/")
        if key in errors:
            rows.append({"model": model_name, "kind": kind, "error": errors[key]})
            continue
        fft = seconds.get(f"{model_name}/fft")
        rows.append({"model": model_name, "kind": kind, "seconds": seconds[key], "parameters": params[key],
                     "ratio_to_fft": seconds[key] / fft if fft else None})
    return {"rows": rows, "rounds": rounds, "warmup": warmup, "amp": amp and torch.device(device).type == "cuda",
            "settings": {"fno": {**FNO_SETTINGS, **(settings or {}).get("fno", {})},
                         "mri": {**MRI_SETTINGS, **(settings or {}).get("mri", {})}}}


def goal_checks(rows: list[dict]) -> list[dict]:
    """[{model, kind, limit, ratio, met}] of GOALS (met None when a step is missing)."""
    ratio = {(r["model"], r["kind"]): r.get("ratio_to_fft") for r in rows}
    return [{"model": m, "kind": k, "limit": limit, "ratio": ratio.get((m, k)),
             "met": None if ratio.get((m, k)) is None else ratio[(m, k)] <= limit} for m, k, limit in GOALS]


def profile_steps(steps: dict, device, calls: int = 3) -> dict:
    """{name: [{op, self_ms_per_step, percent, calls_per_step}] largest self time first} from torch.profiler,
    the steps profiled alternately (one call each per round, `calls` rounds) so that load changes hit
    them alike."""
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.device(device).type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    attr = "self_device_time_total" if cuda else "self_cpu_time_total"
    totals = {name: {} for name in steps}
    for step in steps.values():
        step()
    for _ in range(calls):
        for name, step in steps.items():
            with profile(activities=activities) as prof:
                step()
                if cuda:
                    torch.cuda.synchronize()
            for e in prof.key_averages():
                us, count = totals[name].get(e.key, (0.0, 0))
                totals[name][e.key] = (us + getattr(e, attr, 0), count + e.count)
    out = {}
    for name, ops in totals.items():
        total = sum(us for us, _ in ops.values()) or 1.0
        rows = [{"op": op, "self_ms_per_step": us / 1e3 / calls, "percent": 100 * us / total,
                 "calls_per_step": count / calls} for op, (us, count) in ops.items() if us > 0]
        out[name] = sorted(rows, key=lambda r: r["self_ms_per_step"], reverse=True)
    return out


def profiles_for_missed_goals(device, goals: list[dict], amp: bool, settings: dict | None = None,
                              top: int = 12) -> dict:
    """For every missed goal: {"<model>/<kind>": top ops, "<model>/fft": top ops, "<model>/<kind> − fft":
    the operators that account for the difference (self ms per step of the kind minus that of fft,
    largest first; calls per step shown as kind/fft)} (fresh models)."""
    out = {}
    for goal in goals:
        if goal["met"] is not False:
            continue
        model, kind = goal["model"], goal["kind"]
        steps = {k: BUILDERS[model](k, device, amp, (settings or {}).get(model))[0] for k in (kind, "fft")}
        ops = profile_steps(steps, device)
        for k in (kind, "fft"):
            out[f"{model}/{k}"] = ops[k][:top]
        base = {o["op"]: o for o in ops["fft"]}
        mine = {o["op"]: o for o in ops[kind]}
        extra = sum(o["self_ms_per_step"] for o in ops[kind]) - sum(o["self_ms_per_step"] for o in ops["fft"])
        diff = []
        for op in set(base) | set(mine):
            ms = mine.get(op, {}).get("self_ms_per_step", 0.0) - base.get(op, {}).get("self_ms_per_step", 0.0)
            diff.append({"op": op, "self_ms_per_step": ms, "percent": 100 * ms / extra if extra > 0 else None,
                         "calls_per_step": f"{mine.get(op, {}).get('calls_per_step', 0):g}/"
                                           f"{base.get(op, {}).get('calls_per_step', 0):g}"})
        diff.sort(key=lambda d: d["self_ms_per_step"], reverse=True)
        out[f"{model}/{kind} − fft"] = diff[:top]
    return out


def steps_table(rows: list[dict]) -> str:
    return markdown_table(
        ["model", "kind", "ms per step", "× fft step", "parameters"],
        [[r["model"], r["kind"], f"{r['seconds'] * 1e3:.1f}",
          f"{r['ratio_to_fft']:.2f}×" if r.get("ratio_to_fft") else "", r["parameters"]] if "error" not in r
         else [r["model"], r["kind"], "error: " + r["error"], "", ""] for r in rows])


def goals_table(goals: list[dict]) -> str:
    return markdown_table(
        ["model", "goal", "measured", "met"],
        [[g["model"], f"{g['kind']} step ≤ {g['limit']}× fft step",
          f"{g['ratio']:.2f}×" if g["ratio"] is not None else "not measured",
          {True: "yes", False: "**no**", None: "—"}[g["met"]]] for g in goals])


def steps_markdown(result: dict, title: str) -> str:
    env = result["environment"]
    fno, mri = result["settings"]["fno"], result["settings"]["mri"]
    table, goals = steps_table(result["rows"]), goals_table(result["goals"])
    text = (f"# {title} ({env['device']})\n\n"
            f"torch {env['torch']}, triton {env['triton']}, neuraloperator {env['neuralop']}, python {env['python']}; "
            f"{env['threads']} threads on {env['cpu_count']} CPUs, 1-min load average {env['load_average_1min']}"
            f"{' (other processes shared the CPUs: absolute times are inflated, ratios measured side by side)' if (env['load_average_1min'] or 0) > env['threads'] else ''}; "
            f"AMP {result['amp']}. Median of {result['rounds']} interleaved rounds after {result['warmup']} warm-up "
            f"steps.\n\nCommand: `{env['command']}`\n\n"
            f"FNO: batch {fno['batch']}, width {fno['hidden_channels']}, {fno['grid']}², n_modes {tuple(fno['n_modes'])}, "
            f"{fno['n_layers']} layers, {fno['in_channels']} → {fno['out_channels']} channels, Adam "
            f"(ns: that FNO rolled out over {fno.get('t_out', NS_T_OUT)} frames, one call each). "
            f"MRI: unrolled-<kind> (modl: modl-<kind>, CG data consistency), scale {mri['scale']}, batch {mri['batch']}, {mri['grid']}², {mri['coils']} coils, "
            f"Adam. One step = zero_grad + forward + loss + backward + optimiser step.\n\n"
            + table + "\n## Goals\n\n" + goals)
    for key, ops in result.get("profiles", {}).items():
        what = ("the extra self time per step, operator by operator (% of the total extra)" if "−" in key
                else "self time per step, mean of 3 calls profiled alternately with the other step")
        text += (f"\n## Profile of {key} (torch.profiler: {what})\n\n"
                 + markdown_table(["operator", "ms per step", "%", "calls per step"],
                                  [[o["op"], f"{o['self_ms_per_step']:.2f}", (f"{o['percent']:.1f}%" if o["percent"] is not None else ""),
                                    f"{o['calls_per_step']:g}" if isinstance(o["calls_per_step"], float) else o["calls_per_step"]]
                                   for o in ops]))
    if result.get("analysis"):
        text += "\n## Where the time goes\n\n" + result["analysis"] + "\n"
    return text


def run(device, models=MODELS, kinds=None, amp=False, rounds=10, warmup=2, profile=True,
        settings: dict | None = None) -> dict:
    """measure_steps + goals + (when a goal is missed and `profile`) profiles + environment."""
    result = measure_steps(device, models, kinds, amp, rounds, warmup, settings)
    result["goals"] = goal_checks(result["rows"])
    if profile:
        try:
            result["profiles"] = profiles_for_missed_goals(device, result["goals"], amp, settings)
        except Exception as error:  # the profile is an explanation, not the measurement
            result["profile_error"] = f"{type(error).__name__}: {error}"
    result["environment"] = describe_environment(device)
    return result


def main(args) -> int:
    from common.machine_load import LoadGuard

    device = resolve_device(args.device)
    stem = f"{device.type}_steps"
    refuse_overwrite(args.out, stem, args.overwrite)
    guard = LoadGuard(device, getattr(args, "allow_loaded", False), "bench steps")
    result = run(device, args.models, args.kinds, args.amp, args.rounds, args.warmup, not args.no_profile)
    result["environment"]["load"] = guard.finish()
    markdown = steps_markdown(result, "Training-step time per transform kind" + guard.label())
    print(markdown)
    paths = write_results(args.out, stem, result, markdown)
    print("wrote", *paths)
    return 0

"""Time ngebm's training steps against the reference code's, side by side in one process: JEM against
github.com/wgrathwohl/JEM, NG-EBM against its authors' fork of JEM (github.com/chrissweet/NG-EBM), cross-entropy
against JEM's script with p(x) switched off. The variants alternate within each round (rotated), after warm-up.

The reference side uses the reference's own code: its argument parser's defaults (read from the script), its `CCF`
model, replay buffer and SGLD sampler (`get_model_and_buffer`, `get_sample_q`). Its training step is the body of the
loop in its `main`, which cannot be imported: `reference_step` is that body without the logging (see its docstring).
Before timing, one step of each pair from the same weights, inputs, buffer and random-number state, in fp32 and in
float64, checks that the two do the same arithmetic (losses, parameter gradients, SGLD samples).

Usage (from the repository root; the clones need torchvision and tqdm, as the reference does):
    python tools/bench_reference.py --reference PATH/TO/JEM --fork PATH/TO/NG-EBM \\
        --json_out nbs/precision/reference_speed.json
"""
import argparse, ast, contextlib, importlib, io, json, os, platform, statistics, subprocess, sys, time
from dataclasses import dataclass, replace
from pathlib import Path
import torch
from torch import nn
from ngebm.bench import bench_learner
from ngebm.config import PRESETS, RunConfig
from ngebm.methods.ngebm import NGEBMConfig
from ngebm.models import jem_to_ngebm_state_dict
from ngebm.precision import bf16_support

METHODS = ('jem', 'ngebm', 'ce')
# The reference's command line per method, on top of its defaults (NG-EBM: the fork's README; CE: JEM's without p(x))
REFERENCE_ARGV = {'jem': [],
                  'ngebm': ['--energy_variance_loss', '1.0', '--energy_derivative_loss', '1.0',
                            '--p_x_weight', '0.0', '--p_y_given_x_weight', '1.0'],
                  'ce': ['--p_x_weight', '0.0']}
_REF_MODULES = ('train_wrn_ebm', 'wideresnet', 'norms', 'utils')

# ---------------------------------------------------------------- the reference, through its own functions

def reference_args(script, argv=()) -> argparse.Namespace:
    "The reference script's own arguments: its `if __name__ == '__main__'` block but the call to `main`, run on `argv`."
    tree = ast.parse(Path(script).read_text())
    block = next((n for n in tree.body if isinstance(n, ast.If) and '__main__' in ast.unparse(n.test)), None)
    if block is None: raise ValueError(f"{script} has no `if __name__ == '__main__':` block to read its arguments from")
    is_main_call = lambda s: (isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)
                              and ast.unparse(s.value.func) == 'main')
    ns, argv0 = {'argparse': argparse}, sys.argv
    sys.argv = [str(script), *map(str, argv)]
    try: exec(compile(ast.Module([s for s in block.body if not is_main_call(s)], []), str(script), 'exec'), ns)
    finally: sys.argv = argv0
    if not isinstance(ns.get('args'), argparse.Namespace):
        raise ValueError(f"{script}'s main block does not set `args` by argparse")
    return ns['args']

def load_reference(repo) -> object:
    "The `train_wrn_ebm` module of the clone `repo`, imported with that clone's own wideresnet, norms and utils."
    repo = Path(repo).resolve()
    if not (repo/'train_wrn_ebm.py').is_file():
        raise FileNotFoundError(f"{repo}: no train_wrn_ebm.py, so not a clone of JEM or its fork")
    saved = {k: sys.modules.pop(k) for k in _REF_MODULES if k in sys.modules}
    sys.path.insert(0, str(repo))
    try:
        with contextlib.redirect_stdout(io.StringIO()): return importlib.import_module('train_wrn_ebm')
    finally:   # JEM and the fork use the same module names: each keeps its own, none stays in sys.modules
        sys.path.remove(str(repo))
        for k in _REF_MODULES: sys.modules.pop(k, None)
        sys.modules.update(saved)

@dataclass
class ReferenceRun:
    "What the reference's `main` builds before its loop: model, optimiser, replay buffer and sampler."
    args:argparse.Namespace
    f:nn.Module
    optim:torch.optim.Optimizer
    buffer:torch.Tensor
    sample_q:object

def reference_run(mod, args, device='cpu') -> ReferenceRun:
    "The reference's model and buffer (`get_model_and_buffer`), sampler (`get_sample_q`) and Adam, as `main` has them."
    if args.optimizer != 'adam': raise ValueError(f"only the default optimizer, adam, is driven; got {args.optimizer}")
    sample_q = mod.get_sample_q(args, device)
    with contextlib.redirect_stdout(io.StringIO()): f, buffer = mod.get_model_and_buffer(args, device, sample_q)
    optim = torch.optim.Adam(f.parameters(), lr=args.lr, betas=[.9, .999], weight_decay=args.weight_decay)
    return ReferenceRun(args, f, optim, buffer, sample_q)

def reference_step(run:ReferenceRun, x_p_d, x_lab, y_lab) -> torch.Tensor:
    """One iteration of the loop in the reference's `main` (train_wrn_ebm.py of JEM or of the fork), without its
    logging and learning-rate warm-up: the fork's NG-EBM terms on the labelled batch's logits (batch variance of
    LogSumExp f(x), mean ||d LogSumExp f(x) / dx|| by double backprop), JEM's p(x) term
    -(mean f(x_p_d) - mean f(x_q)) with x_q = sample_q(f, buffer), the cross-entropy of f.classify(x_lab), the |L| > 1e8
    guard (one host sync), then zero_grad, backward and the Adam step."""
    a, f, L, logits = run.args, run.f, 0., None
    var_w, der_w = getattr(a, 'energy_variance_loss', 0.), getattr(a, 'energy_derivative_loss', 0.)   # the fork's only
    if der_w > 0: x_lab = x_lab.detach().requires_grad_(True)
    if hasattr(a, 'energy_variance_loss'):   # the fork computes the logits first, for its terms and the cross-entropy
        logits = f.classify(x_lab)
        e = logits.logsumexp(dim=1)
        if var_w > 0: L = L + var_w * ((e.mean() - e) ** 2).mean()
        if der_w > 0:
            g = torch.autograd.grad(e.sum(), x_lab, create_graph=True)[0]
            L = L + der_w * g.flatten(1).norm(dim=1).mean()
    if a.p_x_weight > 0:
        if a.class_cond_p_x_sample: raise ValueError("class-conditional p(x) sampling is not driven here (no default)")
        x_q = run.sample_q(f, run.buffer)
        L = L + a.p_x_weight * -(f(x_p_d).mean() - f(x_q).mean())
    if a.p_y_given_x_weight > 0:
        if logits is None: logits = f.classify(x_lab)
        L = L + a.p_y_given_x_weight * nn.CrossEntropyLoss()(logits, y_lab)
    if a.p_x_y_weight > 0: raise ValueError("the p(x, y) term is not driven here (not a default)")
    if L.abs().item() > 1e8: raise FloatingPointError(f"the reference's guard: |L| = {L.abs().item():.3g} > 1e8")
    run.optim.zero_grad(); L.backward(); run.optim.step()
    return L

# ---------------------------------------------------------------- ngebm's side

def register_preset(depth:int, width:int) -> str:
    "The cifar10 preset (3x32x32, 20 SGLD steps, buffer 10,000) with a WRN-depth-width, put in PRESETS; its name."
    name = f'cifar10@wrn-{depth}-{width}'
    PRESETS.setdefault(name, replace(PRESETS['cifar10'], depth=depth, width=width))
    return name

def ngebm_learner(method:str, variant:str, preset:str, batch_size:int, seed:int=0) -> tuple:
    """(learner, x, y): `bench_learner`'s Learner of `method` in fp32 or, for variant 'fast', with bf16 autocast and
    channels-last (`RunConfig(precision='bf16', channels_last=True)`); NG-EBM with the released code's weights."""
    fast = variant == 'fast'
    run = RunConfig('cpu', precision='bf16' if fast else 'fp32', channels_last=fast, progress=False)
    learn, x, y = bench_learner(method, preset, batch_size, run, seed)
    if method == 'ngebm': learn.method.hp = NGEBMConfig.code()   # variance 1, gradient norm 1, CE 1: the fork's README
    return learn, x, y

def same_settings(args, learn) -> dict:
    "The reference's SGLD and buffer arguments next to the ngebm method's (JEM only; empty otherwise)."
    s = getattr(learn.method.hp, 'sgld', None)
    if s is None or args.p_x_weight == 0: return {}
    pairs = dict(steps=(args.n_steps, s.steps), step_size=(args.sgld_lr, s.step_size),
                 noise_std=(args.sgld_std, s.noise_std), buffer_size=(args.buffer_size, s.buffer_size),
                 reinit_freq=(args.reinit_freq, s.reinit_freq))
    return {k: dict(reference=r, ngebm=n, equal=r == n) for k, (r, n) in pairs.items()}

def rel_diff(a:torch.Tensor, b:torch.Tensor) -> float:
    "||a - b|| / ||b|| in float64."
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    return ((a - b).norm() / b.norm()).item()

def to_dtype(run:ReferenceRun, learn, dtype):
    "Both sides' models and buffers in `dtype`, in place; ngebm's fresh chain states drawn in fp32, as the reference's."
    run.f.to(dtype); learn.model.to(dtype)
    if run.args.p_x_weight > 0:
        run.buffer = run.buffer.to(dtype)
        b, init = learn.method.buffer, learn.method.buffer.init
        b.dtype, b.init = dtype, lambda n, y=None, device=None, dtype_=None: init(n, y, device).to(dtype)

def compare_steps(run:ReferenceRun, learn, x, y, seed:int=0, dtype=torch.float32) -> dict:
    """One step of the reference and of ngebm in `dtype` from the same weights, batch, replay buffer and random-number
    state (x serves as both the reference's p(x) and labelled batch): relative differences of the losses, the parameter
    gradients and, for JEM, the SGLD samples. The learner takes the reference's weights (and buffer) first."""
    to_dtype(run, learn, dtype); x = x.to(dtype)
    learn.model.load_state_dict(jem_to_ngebm_state_dict(run.f.state_dict()))
    if run.args.p_x_weight > 0: learn.method.buffer.buffer = run.buffer.clone()
    drawn, sample_q = [], run.sample_q
    run.sample_q = lambda *a, **k: drawn.append(sample_q(*a, **k)) or drawn[-1]
    try: torch.manual_seed(seed); l_ref = reference_step(run, x, x, y)
    finally: run.sample_q = sample_q
    torch.manual_seed(seed); l_ng = learn.one_batch(x, y)
    g_ref = jem_to_ngebm_state_dict({k: p.grad for k, p in run.f.named_parameters() if p.grad is not None})
    g_ng = {k: p.grad for k, p in learn.model.named_parameters()}
    if set(g_ref) != set(g_ng): raise ValueError(f"parameters differ: {sorted(set(g_ref) ^ set(g_ng))}")
    flat = lambda g: torch.cat([g[k].flatten() for k in g_ref])
    out = dict(dtype=str(dtype).removeprefix('torch.'), loss_reference=l_ref.item(), loss_ngebm=l_ng.item(),
               loss_rel_diff=abs(l_ref.item() - l_ng.item()) / abs(l_ref.item()),
               grad_rel_diff=rel_diff(flat(g_ng), flat(g_ref)))
    if drawn: out['samples_rel_diff'] = rel_diff(learn.parts['samples'], drawn[0])
    return out

# ---------------------------------------------------------------- timing

def rotated(keys:list, r:int) -> list:
    "`keys` rotated left by r: round r starts with the r-th key, so no variant always runs first."
    k = r % len(keys) if keys else 0
    return keys[k:] + keys[:k]

def time_round_robin(steps:dict, rounds:int, warmup:int, say=print) -> dict:
    """Seconds of each step over `rounds` rounds, every step once per round in rotated order, after `warmup` untimed
    rounds. Ctrl-C stops the timing and keeps the complete rounds."""
    keys = list(steps)
    for _ in range(warmup):
        for k in keys: steps[k]()
    times = {k: [] for k in keys}
    try:
        for r in range(rounds):
            for k in rotated(keys, r):
                t0 = time.perf_counter(); steps[k](); times[k].append(time.perf_counter() - t0)
            say(f"round {r + 1}/{rounds}: " + ', '.join(f"{'/'.join(k)} {times[k][-1]:.3g} s" for k in keys))
    except KeyboardInterrupt:   # Ctrl-C: keep the complete rounds
        n = min(map(len, times.values()))
        if n == 0: raise
        times = {k: v[:n] for k, v in times.items()}
        say(f"interrupted: keeping {n} complete rounds")
    return times

def spread(v:list) -> dict:
    "Median, quartiles and interquartile range of `v`."
    q1, med, q3 = statistics.quantiles(v, n=4, method='inclusive') if len(v) > 1 else (v[0],) * 3
    return dict(median=med, q1=q1, q3=q3, iqr=q3 - q1)

def summarise(times:dict) -> dict:
    "Per method and variant: the step times' spread, the per-round speed-up over the reference (its seconds / these)."
    out = {}
    for m in dict.fromkeys(k[0] for k in times):
        ref = times[m, 'reference']
        out[m] = {v: dict(seconds=spread(t), speedup=spread([a / b for a, b in zip(ref, t)]), times=t)
                  for (mm, v), t in times.items() if mm == m}
    return out

def profile_steps(step, n:int=2, top:int=15) -> list:
    "torch.profiler over `n` calls of `step`: the top operations by self CPU time, with their share."
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n): step()
    ev = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in ev)
    return [dict(op=e.key, calls=e.count, self_ms=e.self_cpu_time_total / 1e3, share=e.self_cpu_time_total / total)
            for e in ev[:top]]

def cpu_model() -> str:
    "The CPU's model name from /proc/cpuinfo (platform.processor() where that cannot be read)."
    try: lines = Path('/proc/cpuinfo').read_text().splitlines()
    except OSError: return platform.processor() or 'unknown'
    try: return next(l.split(':', 1)[1].strip() for l in lines if l.startswith('model name'))
    except StopIteration: return platform.processor() or 'unknown'

def git_commit(repo) -> str:
    "The commit checked out in `repo` (None if it is not a git clone)."
    r = subprocess.run(['git', '-C', str(repo), 'rev-parse', 'HEAD'], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None

# ---------------------------------------------------------------- the run

def bench_reference(reference, fork, depth=10, width=2, batch_size=64, rounds=15, warmup=2, threads=2, seed=0,
                    profile=0, say=print) -> dict:
    "Check, then time, the reference's and ngebm's JEM, NG-EBM and CE steps, interleaved; the full result as a dict."
    torch.set_num_threads(threads)
    mods = {'jem': load_reference(reference), 'ngebm': load_reference(fork)}
    mods['ce'] = mods['jem']
    preset = register_preset(depth, width)
    load0, steps, checks, settings = os.getloadavg(), {}, {}, {}
    for m in METHODS:
        script = Path(fork if m == 'ngebm' else reference)/'train_wrn_ebm.py'
        argv = ['--depth', depth, '--width', width, '--batch_size', batch_size, *REFERENCE_ARGV[m]]
        args = reference_args(script, argv)
        def pair():
            torch.manual_seed(seed); run = reference_run(mods[m], args)
            return run, *ngebm_learner(m, 'fp32', preset, batch_size, seed)
        run, learn32, x, y = pair()
        settings[m] = same_settings(args, learn32)
        checks[m] = [compare_steps(*pair(), seed, dt) for dt in (torch.float32, torch.float64)]   # same arithmetic?
        say(f"{m}: same arithmetic? {json.dumps(checks[m])}")
        fast, xf, yf = ngebm_learner(m, 'fast', preset, batch_size, seed)
        for l in (learn32, fast): l.model.load_state_dict(jem_to_ngebm_state_dict(run.f.state_dict()))   # same weights
        steps[m, 'reference'] = lambda run=run, x=x, y=y: reference_step(run, x, x, y)
        steps[m, 'fp32'] = lambda l=learn32, x=x, y=y: l.one_batch(x, y)
        steps[m, 'fast'] = lambda l=fast, x=xf, y=yf: l.one_batch(x, y)
    say(f"timing {len(steps)} steps, {warmup} warm-up and {rounds} timed rounds, {threads} threads")
    times = time_round_robin(steps, rounds, warmup, say)
    config = dict(model=f'WRN-{depth}-{width}', depth=depth, width=width, batch_size=batch_size, shape=[3, 32, 32],
                  rounds=rounds, rounds_done=len(next(iter(times.values()))), warmup=warmup, preset=preset,
                  reference_argv={m: [str(a) for a in v] for m, v in REFERENCE_ARGV.items()})
    out = dict(torch=torch.__version__, python=platform.python_version(), cpu=cpu_model(), bf16=bf16_support('cpu')[1],
               threads=threads, load_average=[load0[0], os.getloadavg()[0]], cores=os.cpu_count(), config=config,
               reference=dict(jem=dict(url='https://github.com/wgrathwohl/JEM', commit=git_commit(reference)),
                              ngebm=dict(url='https://github.com/chrissweet/NG-EBM', commit=git_commit(fork))),
               sgld_settings=settings, checks=checks, results=summarise(times))
    if profile: out['profile_fast_jem'], out['profile_steps'] = profile_steps(steps['jem', 'fast'], profile), profile
    return out

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--reference', required=True, help="a clone of github.com/wgrathwohl/JEM")
    p.add_argument('--fork', required=True, help="a clone of the NG-EBM authors' fork (github.com/chrissweet/NG-EBM)")
    p.add_argument('--depth', type=int, default=10, help="WRN depth, 6n+4 (default 10)")
    p.add_argument('--width', type=int, default=2, help="WRN widen factor (default 2)")
    p.add_argument('--batch_size', type=int, default=64, help="images per step (default 64)")
    p.add_argument('--rounds', type=int, default=15, help="timed rounds, each variant once per round (default 15)")
    p.add_argument('--warmup', type=int, default=2, help="untimed rounds first (default 2)")
    p.add_argument('--threads', type=int, default=2, help="torch threads while timing (default 2)")
    p.add_argument('--profile', type=int, default=0, help="also profile this many fast JEM steps (default 0: none)")
    p.add_argument('--json_out', help="write the result here as JSON")
    a = p.parse_args(argv)
    out = bench_reference(a.reference, a.fork, a.depth, a.width, a.batch_size, a.rounds, a.warmup, a.threads,
                          profile=a.profile)
    for m, r in out['results'].items():
        print(f"{m}: " + ', '.join(f"{v} {s['seconds']['median']:.3g} s ({s['speedup']['median']:.2f}x the reference)"
                                   for v, s in r.items()))
    if a.json_out: Path(a.json_out).write_text(json.dumps(out, indent=1))

if __name__ == '__main__': main()

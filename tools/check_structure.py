"""Check the package's layering, as CI does: every notebook imports only modules that earlier notebooks export,
the modules import each other without a cycle, no module outgrows a reader (MAX_LINES lines), the docs' sidebar
lists every notebook, and no code line of a tutorial-track notebook is longer than MAX_WIDTH characters.
Usage: python tools/check_structure.py  (exit status 1, with one line per problem, when a rule is broken)."""
import ast, json, re, sys
from graphlib import TopologicalSorter, CycleError
from pathlib import Path

MAX_LINES = 450
MAX_WIDTH = 120   # characters per code line in the tutorial track's notebooks
root = Path(__file__).resolve().parent.parent
lib, nbs = root/'ngebm', root/'nbs'

def module_name(p:Path) -> str:
    "ngebm/methods/jem.py -> 'methods.jem'; a package's __init__.py -> the package."
    parts = p.relative_to(lib).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)

def imported(tree, me:str, is_pkg:bool) -> set:
    "The ngebm modules a module's code imports (relative imports resolved)."
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            if n.level:
                base = me.split('.') if is_pkg else me.split('.')[:-1]
                base = base[:len(base) - (n.level - 1)]
                name = '.'.join(base + ([n.module] if n.module else []))
            else: name = (n.module or '').removeprefix('ngebm').lstrip('.')
            out |= {name} | {f'{name}.{a.name}'.lstrip('.') for a in n.names}
        elif isinstance(n, ast.Import): out |= {a.name.removeprefix('ngebm.') for a in n.names if a.name.startswith('ngebm.')}
    return out

def notebook_key(p:Path) -> tuple:
    m = re.match(r'(\d+)([a-z]?)_', p.name)
    return (int(m.group(1)), m.group(2))

def main() -> list:
    mods = {module_name(p): p for p in lib.rglob('*.py') if p.name != '_modidx.py'}
    problems, graph = [], {}
    for m, p in mods.items():
        src = p.read_text()
        graph[m] = {d for d in imported(ast.parse(src), m, p.name == '__init__.py') if d in mods and d != m}
        if (n := len(src.splitlines())) > MAX_LINES: problems.append(f"module ngebm.{m} has {n} lines (at most {MAX_LINES})")
    try: tuple(TopologicalSorter(graph).static_order())
    except CycleError as e: problems.append(f"import cycle: {' -> '.join(e.args[1])}")
    books = sorted((p for p in nbs.glob('[0-9]*.ipynb')), key=notebook_key)
    cells = {p: [''.join(c['source']) for c in json.loads(p.read_text())['cells'] if c['cell_type'] == 'code'] for p in books}
    exporter = {}
    for p in books:
        for s in cells[p]:
            if (m := re.search(r'^#\|\s*default_exp\s+(\S+)', s, re.M)): exporter.setdefault(m.group(1).removesuffix('.__init__'), p)
    for p in books:
        used = {u for s in cells[p] for u in re.findall(r'(?:from|import)\s+ngebm\.([\w.]+)', s)}
        for u in sorted(used):
            e = exporter.get(u)
            if e is not None and notebook_key(e) > notebook_key(p):
                problems.append(f"{p.name} imports ngebm.{u}, which the later {e.name} exports")
    listed = set(re.findall(r'-\s+(\S+\.ipynb)', (nbs/'sidebar.yml').read_text())) if (nbs/'sidebar.yml').exists() else set()
    for p in sorted(nbs.glob('*.ipynb')):
        if p.name not in listed: problems.append(f"{p.name} is missing from nbs/sidebar.yml (the docs' two tracks)")
    return problems + long_lines()

def tutorial_notebooks() -> list:
    "The notebooks of the sidebar's Tutorial section, in order."
    side = (nbs/'sidebar.yml').read_text() if (nbs/'sidebar.yml').exists() else ''
    tut = side.split('section: Tutorial')[1].split('section:')[0] if 'section: Tutorial' in side else ''
    return re.findall(r'-\s+(\S+\.ipynb)', tut)

def long_lines() -> list:
    "Each tutorial notebook with code lines over MAX_WIDTH characters: a reader should not scroll sideways."
    out = []
    for name in tutorial_notebooks():
        cells = [c for c in json.loads((nbs/name).read_text())['cells'] if c['cell_type'] == 'code']
        n = sum(len(l) > MAX_WIDTH for c in cells for l in ''.join(c['source']).splitlines())
        if n: out.append(f"{name} (tutorial track) has {n} code lines over {MAX_WIDTH} characters")
    return out

if __name__ == '__main__':
    problems = main()
    for line in problems: print(line)
    print(f"structure: {'ok' if not problems else f'{len(problems)} problems'}")
    sys.exit(1 if problems else 0)

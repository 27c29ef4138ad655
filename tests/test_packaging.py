"""The fresh machine and the image, checked without a Docker engine: the README's Quick
start, scripts/demo, the Dockerfile's stages and layers, the locked dependency set, the
.dockerignore, the licence. (The image itself is built by `docker build`, not here.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


# --- README Quick start and scripts/demo ------------------------------------------------


def _section(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"\n## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else None]


def test_quick_start_is_two_commands_demo_then_the_whole_suite() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", _section("Quick start"), re.S)
    assert len(blocks) == 1
    assert blocks[0].strip().splitlines() == ["bash scripts/demo", "bash scripts/check"]


def test_scripts_demo_installs_into_a_virtualenv_on_debians_python() -> None:
    demo = (ROOT / "scripts" / "demo").read_text()
    lib = (ROOT / "scripts" / "lib.sh").read_text()
    assert ". scripts/lib.sh" in demo and "find_python" in demo
    assert '"$PYTHON" -m pip install -q .' in demo
    # the same choice as scripts/check: Debian's externally managed python3 → .venv,
    # python3-venv installed when ensurepip is missing
    assert "EXTERNALLY-MANAGED" in lib and "apt_install python3-venv" in lib
    assert "-m venv .venv" in lib
    assert ". scripts/lib.sh" in (ROOT / "scripts" / "check").read_text()
    for script in ("demo", "check", "lib.sh", "lock"):
        subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)], check=True)


def test_scripts_demo_runs_the_demo(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTSTEP_")}
    env |= {
        "PYTHON": sys.executable,
        "NEXTSTEP_DEMO_SKIP_INSTALL": "1",  # the suite's interpreter has NextStep already
        "PYTHONPATH": str(ROOT),
        "TMPDIR": str(tmp_path),
    }
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    for kind in ("NO NEXT STEP", "NOT ACCEPTED", "FOLLOW UP DECLINED", "ESCALATION"):
        assert kind in r.stdout
    assert r.stderr == ""


# --- Dockerfile -------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    steps: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def all(self, instruction: str) -> list[str]:
        return [args for ins, args in self.steps if ins == instruction]


def _stages() -> list[Stage]:
    text = (ROOT / "Dockerfile").read_text()
    logical, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):  # a comment inside a continued instruction
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    stages: list[Stage] = []
    for line in logical:
        instruction, _, args = line.strip().partition(" ")
        instruction, args = instruction.upper(), " ".join(args.split())
        if instruction == "FROM":
            m = re.fullmatch(r"(\S+)(?: AS (\S+))?", args, re.I)
            assert m, line
            stages.append(Stage(m[1], m[2]))
        elif stages:
            stages[-1].steps.append((instruction, args))
    return stages


SOURCES = ("app", "connectors", "policies", "pyproject.toml", ".")


def test_the_image_is_built_in_stages_and_the_last_one_holds_no_source() -> None:
    stages = _stages()
    assert len(stages) >= 2 and all(s.name for s in stages[:-1])
    final = stages[-1]
    assert all(s.base == final.base for s in stages)  # one Python base image
    for args in final.all("COPY") + final.all("ADD"):
        sources = [a for a in args.split() if not a.startswith("--")][:-1]
        assert not set(sources) & set(SOURCES), f"source copied into the final image: {args}"
    # the code is built elsewhere: the sources are copied only into a builder stage
    assert any("app ./app" in c for s in stages[:-1] for c in s.all("COPY"))
    installs = [r for r in final.all("RUN") if "pip install" in r]
    assert installs and all("--no-index" in r for r in installs)  # wheels only, no PyPI
    assert all(".whl" in r or "requirements.lock" in r for r in installs)


def test_dependencies_are_a_layer_of_their_own_before_the_code() -> None:
    stages = _stages()
    deps = next(s for s in stages if s.name == "deps")
    copies = deps.all("COPY")
    assert copies == ["requirements.lock /tmp/requirements.lock"]  # nothing else: cached
    wheel = " ".join(deps.all("RUN"))
    assert "--require-hashes" in wheel and "-r /tmp/requirements.lock" in wheel
    final = stages[-1].all("RUN")
    dep_step = next(i for i, r in enumerate(final) if "requirements.lock" in r)
    code_step = next(i for i, r in enumerate(final) if "nextstep-*.whl" in r)
    assert dep_step < code_step
    assert "--require-hashes" in final[dep_step] and "from=deps" in final[dep_step]
    assert "from=build" in final[code_step] and "--no-deps" in final[code_step]


def test_the_image_runs_as_a_user_stops_on_sigterm_within_dockers_grace() -> None:
    final = _stages()[-1]
    users = final.all("USER")
    assert users and users[-1] not in ("root", "0")
    assert final.all("STOPSIGNAL") == ["SIGTERM"]
    env = " ".join(final.all("ENV"))
    grace = float(re.search(r"NEXTSTEP_SHUTDOWN_GRACE_SECONDS=(\S+)", env)[1])  # type: ignore[index]
    assert grace + 1 <= 10  # `docker stop` kills after 10 s by default
    assert f"NEXTSTEP_SHUTDOWN_GRACE_SECONDS={grace:g}" in _section("Deployment")
    assert final.all("HEALTHCHECK") and "/healthz" in final.all("HEALTHCHECK")[0]
    assert final.all("CMD") == ['["nextstep", "serve", "--host", "0.0.0.0", "--port", "8000"]']


def _requirement_names(lines: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in lines}


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-build.lock"])
def test_the_lock_pins_every_package_with_hashes(lock: str) -> None:
    text = (ROOT / lock).read_text()
    assert "bash scripts/lock" in text.splitlines()[1]  # how to regenerate it
    entries = re.findall(
        r"^([A-Za-z0-9._-]+)==(\S+)((?: \\\n +--hash=sha256:[0-9a-f]{64})+)", text, re.M
    )
    requirements = [line for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert entries and len(entries) == len(requirements)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = (
        pyproject["project"]["dependencies"]
        if lock == "requirements.lock"
        else pyproject["build-system"]["requires"]
    )
    locked = {name.lower().replace("_", "-") for name, _, _ in entries}
    assert _requirement_names(wanted) <= locked


def test_every_copied_file_is_in_the_build_context() -> None:
    for stage in _stages():
        for args in stage.all("COPY"):
            if "--from" in args:
                continue
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert not _ignored(source), f"{source} is excluded by .dockerignore"
    for run in (r for s in _stages() for r in s.all("RUN")):
        for source in re.findall(r"type=bind,source=(\S+?),", run):
            if "from=" not in run.split(source)[0].rsplit("--mount", 1)[-1]:
                assert (ROOT / source).exists() and not _ignored(source)


# --- .dockerignore ----------------------------------------------------------------------


def _pattern(glob: str) -> re.Pattern[str]:
    """Docker's .dockerignore matching: ``**`` any folders, ``*`` within one name."""
    out, i = "", 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            out, i = out + ".*", i + 2
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif glob[i] == "?":
            out, i = out + "[^/]", i + 1
        elif glob[i] == "[":
            j = glob.index("]", i)
            out, i = out + glob[i : j + 1], j + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return re.compile(out + "(?:/.*)?")  # a folder excludes what is inside it


def _ignored(path: str) -> bool:
    ignored = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if _pattern(line.lstrip("!").strip("/")).fullmatch(path):
            ignored = not negate
    return ignored


@pytest.mark.parametrize(
    "path",
    [
        "service-account.json",
        "deploy/google-key.json",
        "key.pem",
        "certs/ca.pem",
        "nextstep.db.key",
        "data/nextstep.db",
        "nextstep.db-wal",
        ".env",
        ".env.production",
        "config/.env.local",
        "prod.env",
        ".git/config",
        ".venv/bin/python",
        "app/__pycache__/x.cpython-311.pyc",
        "tests/conftest.py",
    ],
)
def test_dockerignore_keeps_keys_secrets_databases_and_venvs_out(path: str) -> None:
    assert _ignored(path)


@pytest.mark.parametrize(
    "path",
    ["app/main.py", "policies/default.yaml", "pyproject.toml", "LICENSE", "requirements.lock"],
)
def test_dockerignore_lets_the_build_inputs_in(path: str) -> None:
    assert not _ignored(path)


def test_no_package_data_is_a_json_file() -> None:
    # .dockerignore drops every *.json (key files): the service must ship none.
    assert not [p for d in ("app", "connectors", "policies") for p in (ROOT / d).rglob("*.json")]


# --- licence ----------------------------------------------------------------------------


def test_the_licence_is_apache_2_in_full_and_declared() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0")
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 190
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert "Apache-2.0" in (ROOT / "README.md").read_text()

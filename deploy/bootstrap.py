#!/usr/bin/env python3
"""Bootstrap for a fresh machine with only Python 3.11+: venv, packages, fonts, generated stubs.

    python3 deploy/bootstrap.py up      # bring the whole system up on the embedded default
    python3 deploy/bootstrap.py test    # run the full test suite
    python3 deploy/bootstrap.py gen     # regenerate the protobuf/gRPC stubs only

Standard library only: it runs before the virtualenv exists.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
GEN = ROOT / "gen"
PROTO = ROOT / "proto"
STAMP = VENV / ".bjsv-installed"
# Debian packages the documents service and its tests need: a 黑体-style CJK TrueType font and pdftoppm;
# the console's browser tests drive Debian's headless Chromium through its chromedriver (no browser download);
DEBIAN_PACKAGES = {
    "fonts-wqy-zenhei": "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "fonts-dejavu-core": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "poppler-utils": "/usr/bin/pdftoppm",
    "chromium": "/usr/bin/chromium",
    "chromium-driver": "/usr/bin/chromedriver",
    "postgresql": "/usr/lib/postgresql",  # initdb/pg_ctl: the private database of `supervisionctl up --cluster`
}


def say(msg: str) -> None:
    print(f"[bootstrap] {msg}", flush=True)


def run(cmd: list[str], **kw) -> None:
    subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def ensure_venv() -> None:
    if not PY.exists():
        say("creating .venv")
        run([sys.executable, "-m", "venv", str(VENV)])
        run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != digest:
        say("installing packages (first run takes about a minute)")
        # The stubs must exist before the editable install maps the generated package.
        gen_stubs(python=None)
        run([str(PY), "-m", "pip", "install", "-q", "-e", ".[dev]"])
        STAMP.write_text(digest)


def ensure_system_packages() -> None:
    missing = [pkg for pkg, path in DEBIAN_PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        say(f"missing system packages {missing}; install them with: sudo apt-get install {' '.join(missing)}")
        return
    say(f"installing {' '.join(missing)} with apt-get")
    subprocess.run(["apt-get", "update", "-qq"], check=False, stdout=subprocess.DEVNULL)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], stdout=subprocess.DEVNULL)


def proto_files() -> list[Path]:
    return sorted(PROTO.rglob("*.proto"))


def gen_stubs(python: str | None = str(PY)) -> None:
    """Generate gen/bjsv/** from proto/bjsv/** (the single source of truth); never edit the output."""
    interpreter = python or str(PY)
    try:
        subprocess.run([interpreter, "-c", "import grpc_tools"], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        run([interpreter, "-m", "pip", "install", "-q", "grpcio-tools==1.85.1"])
    out = GEN / "bjsv"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files = [str(p.relative_to(PROTO)) for p in proto_files()]
    run(
        [
            interpreter,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO}",
            f"--python_out={GEN}",
            f"--pyi_out={GEN}",
            f"--grpc_python_out={GEN}",
            # The descriptor set with comments: the console transcodes HTTP/JSON and writes OpenAPI from it.
            f"--descriptor_set_out={out / 'descriptors.binpb'}",
            "--include_source_info",
            "--include_imports",
            *files,
        ]
    )
    for d in [out, *[p for p in out.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()
    (GEN / ".stamp").write_text(proto_digest())


def proto_digest() -> str:
    h = hashlib.sha256()
    for p in proto_files():
        h.update(str(p.relative_to(PROTO)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def ensure_stubs() -> None:
    stamp = GEN / ".stamp"
    stale = not stamp.exists() or stamp.read_text() != proto_digest()
    if stale or not (GEN / "bjsv" / "descriptors.binpb").exists():
        say("generating protobuf stubs")
        gen_stubs()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"up", "test", "gen", "install"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_venv()
    ensure_stubs()
    if command == "gen":
        return 0
    ensure_system_packages()
    if command == "install":
        return 0
    bindir = VENV / "bin"
    if command == "up":
        os.execv(str(bindir / "supervisionctl"), [str(bindir / "supervisionctl"), "up", *rest])
    os.execv(str(PY), [str(PY), "-m", "pytest", *rest])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

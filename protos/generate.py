#!/usr/bin/env python3
"""Generate etcd3/etcdrpc/ (Python protobuf + gRPC code) from protos/.

Pinned generator:  grpcio-tools==1.62.3   (bundles protoc 25.1, "protobuf 4.25" gencode)

Why this exact version: it is the newest grpcio-tools whose output has neither
protobuf's gencode/runtime version check (protoc >= 26 emits
``runtime_version.ValidateProtobufRuntimeVersion``, which refuses any runtime
older than the generator) nor grpc's ``GRPC_GENERATED_VERSION`` check (which
demands ``grpcio >= generator version``). Its output was verified to import,
serialize and parse under protobuf 3.20.3, 4.21.12, 4.25.9, 5.26.1, 5.29.6,
6.33.6 and 7.36.2 (upb and pure-python backends) with warnings as errors, so the
package can support protobuf >= 4.21 (even 3.20) through 7.x.
Newer grpcio-tools would silently narrow that range: the script refuses them.

Usage (from anywhere; paths are relative to the repository root):

    python protos/generate.py              # regenerate etcd3/etcdrpc/
    python protos/generate.py --check      # exit 1 if committed files are stale
    python protos/generate.py --bootstrap  # make a venv with the pinned tool

If the running interpreter lacks grpcio-tools==1.62.3, the script re-runs itself
with ``$ETCD3_GEN_PYTHON`` or, failing that, the venv made by ``--bootstrap``
(``$ETCD3_GEN_VENV``, default /tmp/etcd3-genvenv), if it has the pinned version.

Besides the generated modules it writes etcd3/etcdrpc/SOURCES.sha256
(sha256sum format, paths relative to the repository root) with the hash of each
.proto source and of each generated file, so tests can detect stale or
hand-edited output without needing this exact grpcio-tools.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

PINNED_GRPCIO_TOOLS = "1.62.3"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO_ROOT = "protos"  # -I root: imports read "etcd3/etcdrpc/kv.proto"
PKG_DIR = os.path.join("etcd3", "etcdrpc")
# Order matters only for readability; output does not depend on it.
PROTOS = ["kv", "auth", "rpc"]
GRPC_PROTOS = ["rpc"]  # the only file with services
HASH_FILE = "SOURCES.sha256"
INIT_TEXT = (
    '"""Generated from protos/ by protos/generate.py; do not edit.\n\n'
    "Every message, enum and stub is also importable from here, as in python-etcd3\n"
    '(e.g. ``etcd3.etcdrpc.WatchCreateRequest.NOPUT``)."""\n\n'
    "from .auth_pb2 import *  # noqa: F401,F403\n"
    "from .kv_pb2 import *  # noqa: F401,F403\n"
    "from .rpc_pb2 import *  # noqa: F401,F403\n"
    "from .rpc_pb2_grpc import *  # noqa: F401,F403\n"
)
DEFAULT_GEN_VENV = os.environ.get("ETCD3_GEN_VENV", "/tmp/etcd3-genvenv")


def proto_paths():
    return [os.path.join(PROTO_ROOT, PKG_DIR, name + ".proto") for name in PROTOS]


def generated_names():
    names = ["__init__.py"]
    for name in PROTOS:
        names += [name + "_pb2.py", name + "_pb2.pyi"]
    for name in GRPC_PROTOS:
        names.append(name + "_pb2_grpc.py")
    names.append(HASH_FILE)
    return sorted(names)


def file_sha256(path):
    with open(path, "rb") as f:
        data = f.read()
    # Normalise line endings so a CRLF checkout hashes the same.
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def installed_grpc_tools_version(python=None):
    """Version of grpcio-tools importable by `python` (None: this interpreter)."""
    code = (
        "import importlib.metadata as m\n"
        "try:\n"
        "    import grpc_tools.protoc\n"
        "    print(m.version('grpcio-tools'))\n"
        "except Exception:\n"
        "    print('')\n"
    )
    if python is None:
        try:
            import importlib.metadata as md

            import grpc_tools.protoc  # noqa: F401

            return md.version("grpcio-tools")
        except Exception:
            return None
    try:
        out = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=60
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def find_pinned_python():
    """An interpreter with the pinned grpcio-tools, or None."""
    if installed_grpc_tools_version() == PINNED_GRPCIO_TOOLS:
        return sys.executable
    candidates = []
    if os.environ.get("ETCD3_GEN_PYTHON"):
        candidates.append(os.environ["ETCD3_GEN_PYTHON"])
    candidates.append(os.path.join(DEFAULT_GEN_VENV, "bin", "python"))
    for cand in candidates:
        if os.path.exists(cand) and installed_grpc_tools_version(cand) == PINNED_GRPCIO_TOOLS:
            return cand
    return None


def run_protoc(out_dir):
    import grpc_tools
    from grpc_tools import protoc  # noqa: F401  (imported to fail early)

    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    base = [sys.executable, "-m", "grpc_tools.protoc", "-I" + PROTO_ROOT, "-I" + wkt]
    all_protos = proto_paths()
    grpc_protos = [os.path.join(PROTO_ROOT, PKG_DIR, n + ".proto") for n in GRPC_PROTOS]
    cmds = [
        base + ["--python_out=" + out_dir, "--pyi_out=" + out_dir] + all_protos,
        base + ["--grpc_python_out=" + out_dir] + grpc_protos,
    ]
    for cmd in cmds:
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"protoc failed:\n{res.stdout}{res.stderr}")


def generate_into(out_root):
    """Write the full generated file set into out_root/etcd3/etcdrpc/."""
    pkg = os.path.join(out_root, PKG_DIR)
    os.makedirs(pkg, exist_ok=True)
    run_protoc(out_root)
    with open(os.path.join(pkg, "__init__.py"), "w", newline="\n") as f:
        f.write(INIT_TEXT)
    lines = []
    for src in proto_paths():
        lines.append(f"{file_sha256(os.path.join(ROOT, src))}  {src.replace(os.sep, '/')}\n")
    for name in generated_names():
        if name == HASH_FILE:
            continue
        rel = os.path.join(PKG_DIR, name)
        digest = file_sha256(os.path.join(out_root, rel))
        lines.append(f"{digest}  {rel.replace(os.sep, '/')}\n")
    with open(os.path.join(pkg, HASH_FILE), "w", newline="\n") as f:
        f.writelines(lines)
    produced = sorted(os.listdir(pkg))
    if produced != generated_names():
        sys.exit(f"unexpected generator output: {produced} (expected {generated_names()})")


def stale_generated_files(pkg_dir):
    """Files in pkg_dir that look generated but are not produced any more."""
    expected = set(generated_names())
    return sorted(
        n for n in os.listdir(pkg_dir)
        if n not in expected and ("_pb2" in n or n.endswith(".sha256"))
    )


def cmd_generate():
    with tempfile.TemporaryDirectory() as tmp:
        generate_into(tmp)
        dest = os.path.join(ROOT, PKG_DIR)
        os.makedirs(dest, exist_ok=True)
        for name in generated_names():
            shutil.copyfile(os.path.join(tmp, PKG_DIR, name), os.path.join(dest, name))
        for name in stale_generated_files(dest):
            os.remove(os.path.join(dest, name))
            print("removed stale", os.path.join(PKG_DIR, name))
    print(f"generated {PKG_DIR} with grpcio-tools {PINNED_GRPCIO_TOOLS}")
    return 0


def cmd_check():
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        generate_into(tmp)
        dest = os.path.join(ROOT, PKG_DIR)
        for name in generated_names():
            want = os.path.join(tmp, PKG_DIR, name)
            have = os.path.join(dest, name)
            if not os.path.exists(have):
                problems.append(f"missing: {os.path.join(PKG_DIR, name)}")
            elif file_sha256(want) != file_sha256(have):
                problems.append(f"differs: {os.path.join(PKG_DIR, name)}")
        if os.path.isdir(dest):
            problems += [f"not generated any more: {os.path.join(PKG_DIR, n)}"
                         for n in stale_generated_files(dest)]
    if problems:
        print(f"Generated code in {PKG_DIR} is stale:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        print(f"Run: python protos/generate.py   (needs grpcio-tools=={PINNED_GRPCIO_TOOLS})",
              file=sys.stderr)
        return 1
    print(f"{PKG_DIR} is up to date")
    return 0


def cmd_bootstrap():
    py = os.path.join(DEFAULT_GEN_VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", DEFAULT_GEN_VENV], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", "grpcio-tools==" + PINNED_GRPCIO_TOOLS],
                   check=True)
    print(f"pinned generator ready: {py}")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temp dir and fail if the committed files differ")
    ap.add_argument("--bootstrap", action="store_true",
                    help=f"create {DEFAULT_GEN_VENV} with grpcio-tools=={PINNED_GRPCIO_TOOLS}")
    args = ap.parse_args(argv)
    if args.bootstrap:
        return cmd_bootstrap()

    have = installed_grpc_tools_version()
    if have != PINNED_GRPCIO_TOOLS:
        other = find_pinned_python()
        if other and os.path.abspath(other) != os.path.abspath(sys.executable):
            cmd = [other, os.path.abspath(__file__)] + (["--check"] if args.check else [])
            return subprocess.call(cmd)
        sys.exit(
            f"protos/generate.py needs grpcio-tools=={PINNED_GRPCIO_TOOLS} "
            f"(this interpreter has {have or 'none'}).\n"
            "Newer versions emit code that refuses older protobuf/grpcio runtimes.\n"
            f"Fix: python protos/generate.py --bootstrap   (creates {DEFAULT_GEN_VENV}), "
            "then re-run;\n"
            "or point ETCD3_GEN_PYTHON at a python that has "
            f"grpcio-tools=={PINNED_GRPCIO_TOOLS}."
        )
    return cmd_check() if args.check else cmd_generate()


if __name__ == "__main__":
    sys.exit(main())

"""wirestream's patch of Beam's 2.62 Flink runner: a jar put first on the classpath of
the JobManager, the TaskManagers and the job server (stdlib only).

Maven serves no Beam job server newer than 2.62 here, and 2.62 has two faults a long
stream runs into (each patch in ``deploy/flink/job-server/patches/`` says what it
changes and why): the runner's state for splittable-DoFn checkpoints grows with every
tick of the feed ticker (TaskManager out of memory in minutes), and its gRPC servers
listen on every interface. ``build_patch_jar`` applies the patches to the 2.62 sources
Maven serves (copied by the job server's pom), compiles the changed classes against
the job server's own jars and packs them. The jar's name carries a digest of the
patches, so changing a patch rebuilds it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

from pipeline.config import REPO_ROOT

PATCHES = REPO_ROOT / "deploy" / "flink" / "job-server" / "patches"


class PatchError(RuntimeError):
    """The patch jar could not be built; the message says what to do."""


def patch_files() -> list[Path]:
    """The patches, in the order they apply."""
    return sorted(PATCHES.glob("*.patch"))


def patch_jar_path(target: Path) -> Path:
    """Where the patch jar for the current patches lives under the job server's ``target``."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in patch_files())).hexdigest()[:12]
    return target / f"wirestream-beam-patch-{digest}.jar"


def patched_sources(patch: Path) -> list[str]:
    """The source paths (relative to a sources jar's root) that ``patch`` changes."""
    return [
        line.split()[1].removeprefix("b/")
        for line in patch.read_text().splitlines()
        if line.startswith("+++ ")
    ]


def build_patch_jar(target: Path, java: Path) -> Path:
    """Build (once) and return the patch jar; ``target`` is the job server's Maven target
    directory (with ``lib/`` and ``patch-inputs/``), ``java`` the ``java`` of a JDK."""
    jar = patch_jar_path(target)
    if jar.exists():
        return jar
    inputs = target / "patch-inputs"
    src, classes = target / "patch-src", target / "patch-classes"
    for folder in (src, classes):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    sources: list[Path] = []
    for patch in patch_files():
        names = patched_sources(patch)
        _extract(inputs, names, src)
        _run(["patch", "-p1", "--forward", "--batch", "-i", str(patch)], src, f"apply {patch.name}")
        sources += [src / name for name in names]
    javac = java.parent / "javac"
    if not javac.exists():
        raise PatchError(f"no javac beside {java}: the Flink runner patch needs a JDK 17 or 11")
    classpath = f"{target / 'lib'}/*:{inputs}/*"
    cmd = [str(javac), "--release", "11", "-nowarn", "-proc:none", "-cp", classpath]
    _run([*cmd, "-d", str(classes), *map(str, sources)], src, "compile the patched classes")
    partial = jar.with_suffix(".tmp")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(classes.rglob("*.class")):
            out.write(path, path.relative_to(classes).as_posix())
    partial.rename(jar)
    return jar


def _extract(inputs: Path, names: list[str], dest: Path) -> None:
    """Copy each of ``names`` out of whichever sources jar in ``inputs`` holds it."""
    missing = set(names)
    for sources_jar in sorted(inputs.glob("*-sources.jar")):
        with zipfile.ZipFile(sources_jar) as archive:
            for name in missing & set(archive.namelist()):
                archive.extract(name, dest)
                missing.discard(name)
    if missing:
        raise PatchError(f"not in the sources jars under {inputs}: {sorted(missing)}")


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    if shutil.which(cmd[0]) is None and not Path(cmd[0]).exists():
        raise PatchError(f"`{cmd[0]}` is needed to {what}; install it (apt-get install {cmd[0]})")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise PatchError(f"could not {what} (exit {proc.returncode}):\n{tail}")

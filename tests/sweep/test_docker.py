"""docker/: compose.yaml is valid (via `docker compose config` when the CLI has compose, else parsed and checked
here), and the Dockerfiles install torch from its own wheel index before the project."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.sweep.conftest import REPO

DOCKER = REPO / "docker"


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_services_and_wiring():
    c = _compose()
    services = c["services"]
    assert {"postgres", "leaderboard", "worker"} <= set(services)
    pg = services["postgres"]
    assert pg["image"].startswith("postgres:") and "healthcheck" in pg
    lb = services["leaderboard"]
    cmd = " ".join(lb["command"])
    assert cmd.startswith("arena leaderboard") and "postgresql+psycopg://" in cmd and "@postgres:5432/" in cmd
    assert lb["depends_on"]["postgres"]["condition"] == "service_healthy"
    worker = " ".join(services["worker"]["command"])
    assert "dask worker tcp://scheduler:8786" in worker and "--nthreads 1" in worker
    for name in ("leaderboard", "scheduler", "worker"):  # the YAML anchor resolved into every arena service
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile"
    for s in services.values():  # nothing published beyond the loopback interface by default
        for port in s.get("ports", []):
            assert port.startswith("127.0.0.1:"), port
    assert set(c["volumes"]) >= {"pgdata", "checkpoints"}


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cuda"])
def test_dockerfile_installs_torch_before_the_project(name):
    lines = [ln.strip() for ln in (DOCKER / name).read_text().splitlines()]
    assert lines[0].startswith("#") and any(ln.startswith("FROM ") for ln in lines)
    torch_at = next(i for i, ln in enumerate(lines) if re.search(r'pip install "torch==', ln))
    index = "whl/cpu" if name == "Dockerfile" else "whl/cu"
    assert index in lines[torch_at]
    project_at = next(i for i, ln in enumerate(lines) if re.search(r'pip install "\.\[', ln))
    assert torch_at < project_at
    copied = {ln.split()[1] for ln in lines if ln.startswith("COPY ")}
    assert {"pyproject.toml", "arena", "architectures", "tasks", "leaderboard"} <= copied
    if name == "Dockerfile.cuda":
        assert any("mamba-ssm" in ln and "--no-build-isolation" in ln for ln in lines)


def test_docker_compose_config_when_available():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("the docker CLI has no compose plugin (the parse test above covers compose.yaml)")
    r = subprocess.run([docker, "compose", "-f", str(DOCKER / "compose.yaml"), "config", "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

"""`ketch monitoring-config`: prometheus.yml from a lab's saved settings, and the token file it needs."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import yaml

from ketch.cli.commands.monitoring import (
    ALERTS_FILE,
    JOBS,
    LabTargets,
    generate,
    prometheus_config,
    render_yaml,
)
from ketch.lab.components import LabLayout, LabSettings

REPO = Path(__file__).resolve().parents[3]


def _lab(tmp_path: Path, **settings) -> Path:
    """A lab state dir as `ketch up` leaves it: lab.json and the apiserver's token file."""
    (tmp_path / "apiserver" / "pki").mkdir(parents=True)
    (tmp_path / "lab.json").write_text(json.dumps({"name": "mon", **settings}))
    (tmp_path / "apiserver" / "tokens.csv").write_text("s3cret-admin,admin,admin,system:masters\n"
                                                       "other-token,alice,alice,\n")
    return tmp_path


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return generate(list(argv), out, err), out.getvalue(), err.getvalue()


def _jobs(config: dict) -> dict[str, dict]:
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_writes_config_and_token_for_the_labs_addresses(tmp_path):
    state = _lab(tmp_path / "state", nodes=3, subnet="10.99.7.0/24", apiserver_port=7443)
    code, out, err = _run("--state-dir", str(state))
    assert code == 0, err
    config = yaml.safe_load((state / "monitoring" / "prometheus.yml").read_text())
    jobs = _jobs(config)
    assert list(jobs) == list(JOBS)

    api = jobs["ketch-apiserver"]
    assert api["scheme"] == "https"
    assert api["static_configs"][0]["targets"] == ["10.99.7.1:7443"]
    assert api["tls_config"]["ca_file"] == str(state / "apiserver" / "pki" / "ca.crt")
    token_file = Path(api["authorization"]["credentials_file"])
    assert token_file == state / "monitoring" / "apiserver.token"
    assert token_file.read_text().strip() == "s3cret-admin"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    assert jobs["ketch-controller-manager"]["static_configs"][0]["targets"] == ["10.99.7.1:10257"]
    assert jobs["ketch-scheduler"]["static_configs"][0]["targets"] == ["10.99.7.1:10259"]
    agents = jobs["ketch-node-agent"]["static_configs"]
    assert [(a["targets"], a["labels"]["node"]) for a in agents] == [
        (["10.99.7.11:10255"], "mon-n1"), (["10.99.7.12:10255"], "mon-n2"), (["10.99.7.13:10255"], "mon-n3")]
    for job in jobs.values():
        for group in job["static_configs"]:
            assert group["labels"]["lab"] == "mon"
    assert "3 node agents" in out
    assert config["rule_files"] == ["alerts.yml"]
    assert (state / "monitoring" / "alerts.yml").read_text() == ALERTS_FILE.read_text()


def test_nodes_keep_their_numeric_order(tmp_path):
    settings = LabSettings(name="big", nodes=11)
    targets = LabTargets.of_lab(settings, LabLayout(state_dir=tmp_path))
    config = prometheus_config(targets, tmp_path / "t")
    nodes = [g["labels"]["node"] for g in _jobs(config)["ketch-node-agent"]["static_configs"]]
    assert nodes == [f"big-n{i}" for i in range(1, 12)]


def test_stdout_writes_nothing(tmp_path):
    state = _lab(tmp_path)
    code, out, _ = _run("--state-dir", str(state), "--stdout", "--scrape-interval", "5s")
    assert code == 0
    assert yaml.safe_load(out)["global"]["scrape_interval"] == "5s"
    assert not (state / "monitoring").exists()


def test_given_token_file_is_referenced_not_written(tmp_path):
    state = _lab(tmp_path / "s")
    mine = tmp_path / "prom.token"
    code, _, err = _run("--state-dir", str(state), "--token-file", str(mine), "--output-dir", str(tmp_path / "o"))
    assert code == 0, err
    config = yaml.safe_load((tmp_path / "o" / "prometheus.yml").read_text())
    assert _jobs(config)["ketch-apiserver"]["authorization"]["credentials_file"] == str(mine)
    assert not mine.exists()


def test_no_lab_is_an_actionable_error(tmp_path):
    code, _, err = _run("--state-dir", str(tmp_path / "nothing"))
    assert code == 1
    assert "ketch up" in err and "lab.json" in err


def test_lab_without_tokens_is_an_actionable_error(tmp_path):
    (tmp_path / "lab.json").write_text("{}")
    code, _, err = _run("--state-dir", str(tmp_path))
    assert code == 1
    assert "admin token" in err and "tokens.csv" in err


def test_committed_example_is_the_default_labs_config():
    layout, settings = LabLayout(), LabSettings()
    expected = render_yaml(prometheus_config(LabTargets.of_lab(settings, layout),
                                             layout.state_dir / "monitoring" / "apiserver.token"))
    assert (REPO / "deploy" / "prometheus" / "prometheus.yml").read_text() == expected, (
        "deploy/prometheus/prometheus.yml is stale: regenerate it (docs/monitoring.md)")


def test_cli_entry_writes_through_the_command_context(tmp_path):
    """`run` is what ketch/cli/main.py calls for `ketch monitoring-config`."""
    from types import SimpleNamespace

    from ketch.cli.commands.monitoring import run

    state = _lab(tmp_path)
    ctx = SimpleNamespace(out=io.StringIO(), err=io.StringIO())
    assert run("monitoring-config", ["--state-dir", str(state), "--stdout"], ctx) == 0
    assert [j["job_name"] for j in yaml.safe_load(ctx.out.getvalue())["scrape_configs"]] == list(JOBS)


def test_ketch_monitoring_config_is_a_command(tmp_path, capsys):
    from ketch.cli.main import main

    state = _lab(tmp_path)
    assert main(["monitoring-config", "--state-dir", str(state), "--stdout"]) == 0
    assert "ketch-node-agent" in capsys.readouterr().out

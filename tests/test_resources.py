import os

from rcfast.resources import available_cpus


def test_slurm_share_wins(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    assert available_cpus() == 3


def test_affinity_without_slurm(monkeypatch):
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert available_cpus() == len(os.sched_getaffinity(0))


def test_bad_slurm_value_ignored(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "0")
    assert available_cpus() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "x")
    assert available_cpus() == len(os.sched_getaffinity(0))

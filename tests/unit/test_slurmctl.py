"""Reading Slurm's output: scontrol's key=value lines, host lists, GPU indices, exit codes
and times."""

from __future__ import annotations

from datetime import UTC

from labyard.jobs.executors.slurmctl import (
    exit_status,
    expand_hostlist,
    expand_indices,
    gpu_indices,
    key_values,
    slurm_time,
)

SHOW_JOB = (
    "JobId=9 JobName=labyard-ab12-5-1 UserId=root(0) Priority=4294901759 JobState=RUNNING "
    "Reason=None Restarts=1 ExitCode=0:0 StartTime=2026-12-06T01:42:15 EndTime=Unknown "
    "AllocNode:Sid=localhost:4227 ReqB:S:C:T=0:0:*:* JOB_GRES=gpu:3   Nodes=lynode1 "
    "CPU_IDs=0 Mem=256 GRES=gpu:3(IDX:0,2-3) MinCPUsNode=1 Command=(null) "
    "Comment=labyard job 5 attempt 1  StdOut=/data/jobs/5/slurm/slurm.out"
)


def test_scontrol_lines_keep_values_with_spaces_and_odd_keys() -> None:
    values = dict(key_values(SHOW_JOB))
    assert values["JobState"] == "RUNNING" and values["Restarts"] == "1"
    assert values["Comment"] == "labyard job 5 attempt 1"
    assert values["AllocNode:Sid"] == "localhost:4227" and values["ReqB:S:C:T"] == "0:0:*:*"
    assert values["StdOut"] == "/data/jobs/5/slurm/slurm.out"


def test_a_running_jobs_gpus_come_from_its_detail_gres() -> None:
    assert gpu_indices(key_values(SHOW_JOB)) == ("0", "2", "3")
    assert gpu_indices(key_values("JobId=1 GRES=gpu:a100:2(IDX:4-5)")) == ("4", "5")
    assert gpu_indices(key_values("JobId=1 JOB_GRES=(null) GRES=")) == ()
    assert expand_indices("0,2-3,x") == ("0", "2", "3")


def test_host_lists_expand() -> None:
    assert expand_hostlist("lynode[1-2,5],gpu7") == ["lynode1", "lynode2", "lynode5", "gpu7"]
    assert expand_hostlist("n[08-10]") == ["n08", "n09", "n10"]
    assert expand_hostlist("") == []


def test_exit_codes_and_signals() -> None:
    assert exit_status("3:0") == 3
    assert exit_status("0:9") == 137  # killed by SIGKILL, as a shell would say
    assert exit_status("0:125") == 0  # Slurm's own marks are no signal
    assert exit_status("") is None and exit_status("N/A") is None


def test_slurm_times_are_read_as_local_time() -> None:
    stamp = slurm_time("2026-12-06T01:42:15")
    assert stamp is not None and stamp.tzinfo is UTC
    assert slurm_time("Unknown") is None and slurm_time("N/A") is None

"""Several processes working as one, launched by torchrun (PyTorch's elastic launcher): where
this process stands among them, its device, and the process group they share. Training
(data parallelism) and batch translation (sharded inputs) both stand on it.

``i2i train|translate --devices N`` runs the same command under ``torchrun --standalone
--nproc-per-node N`` (``launch``); across machines, ``torchrun --nnodes ... -m i2i ...`` on
each. torchrun starts each process in a session of its own, so a terminal's Ctrl-C reaches
only torchrun, which stops them, while a SIGKILL of the command would leave them running and
writing into the folder that a restarted run writes to: every process therefore dies with its
parent (``die_with_parent``).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# where the processes that ``launch`` started put their error messages, for it to say once
ERROR_FILE = "I2I_ERROR_FILE"
# torch is imported by the functions that join or leave a process group: a single process
# translating with ONNX Runtime imports this module and never needs torch (2-3 s)


@dataclass(frozen=True)
class Processes:
    """This process's place: ``rank`` of ``world`` in all, ``local_rank`` of ``local_world``
    on this machine. One process (rank 0 of 1) without torchrun."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def join(device_name: str, backend: str | None = None) -> tuple[Processes, torch.device]:
    """This process's place (from torchrun's environment) and device, one GPU per process on
    a machine with GPUs; joins the process group (``backend``: nccl on CUDA, else gloo)."""
    import torch
    import torch.distributed as dist

    from i2i.device import pick_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(device_name)
    if world == 1:
        return Processes(), device
    die_with_parent(signal.SIGKILL)  # its checkpoints and outputs are atomic
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"))
    return Processes(rank, world, local_rank, local_world), device


def join_sharded(device_name: str) -> tuple[Processes, str, int]:
    """For work shared out by inputs (batch translation): join the process group over gloo
    (only counts and barriers cross it) and take this process's GPU, or its share of the CPU
    cores. Returns (place, device name, CPU threads)."""
    import torch

    procs, device = join(device_name, backend="gloo")
    threads = max(1, (os.cpu_count() or 1) // procs.local_world)
    torch.set_num_threads(threads)
    return procs, str(device), threads


def under_torchrun() -> bool:
    """Whether this process is one of several that torchrun started."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def finish(procs: Processes) -> None:
    """Wait for every process, then leave the process group."""
    import torch.distributed as dist

    if procs.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def launch(devices: int, args: list[str]) -> tuple[int, list[str]]:
    """Run ``i2i ARGS`` in ``devices`` processes on this machine under torchrun; returns the
    exit status of the first process that failed (else 0) and the distinct error messages the
    processes reported (``report_error``): a bad flag or path every process meets is said
    once, not once per process. torchrun's own report of a failure (a traceback of the
    launcher) is left out (``LOGLEVEL=INFO`` brings its logs back). torchrun stops the
    processes when this one is interrupted or terminated, and dies with it when it is
    killed."""
    env = dict(os.environ)
    # torchrun's default (1 thread each, with a banner saying so) wastes cores beside a GPU
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // devices)))
    env.setdefault("LOGLEVEL", "CRITICAL")
    command = [sys.executable, "-m", "i2i.parallel", "--standalone",
               f"--nproc-per-node={devices}", "-m", "i2i", *args]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="i2i-errors-") as folder:
        errors = Path(folder) / "errors.jsonl"
        env[ERROR_FILE] = str(errors)
        code = subprocess.call(command, env=env, preexec_fn=lambda: die_with_parent(signal.SIGTERM))
        said = errors.read_text().splitlines() if errors.is_file() else []
    return code, list(dict.fromkeys(json.loads(line) for line in said))


def report_error(message: str) -> bool:
    """In a process that ``launch`` started, hand the error ``message`` to the launcher, which
    says each distinct one once when all have stopped; True if handed over, False elsewhere
    (the caller prints it)."""
    path = os.environ.get(ERROR_FILE)
    if path is None or not under_torchrun():
        return False
    with open(path, "a") as f:  # one short appended line: whole even beside other processes'
        f.write(json.dumps(message) + "\n")
    return True


def die_with_parent(sig: int) -> None:
    """Have Linux send ``sig`` to this process when its parent dies (``prctl``'s
    PR_SET_PDEATHSIG; Python's standard library has no call for it, hence ctypes). Does
    nothing on other systems."""
    if sys.platform != "linux":
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(sig))


def _torchrun(argv: list[str]) -> int:
    """torchrun's launcher, as ``launch`` runs it (``python -m i2i.parallel TORCHRUN_ARGS``):
    the exit status of the first failed process instead of a traceback."""
    # torch's launcher, imported here: this module is imported without torch elsewhere
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # LOGLEVEL is torchrun's own setting, which its modules' plain loggers do not read
    logging.getLogger("torch.distributed.elastic").setLevel(os.environ.get("LOGLEVEL", "WARNING"))
    try:
        run(parse_args(argv))
    except ChildFailedError as exc:
        code = exc.get_first_failure()[1].exitcode
        return code if code >= 0 else 128 - code  # a signal's death as a shell shows it
    except SignalException as exc:
        return 128 + int(exc.sigval)
    return 0


if __name__ == "__main__":
    sys.exit(_torchrun(sys.argv[1:]))

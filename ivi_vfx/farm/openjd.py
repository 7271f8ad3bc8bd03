"""An Open Job Description job bundle for a JobSpec (AWS Deadline Cloud; `openjd run` locally).

The bundle is a folder: `template.json` (the job template), `parameter_values.json` (Deadline
Cloud's bundle format) and `job.json` (the JobSpec). The template has two steps:

- Train: one task, `ivi-render train --job job.json`, with a host requirement of at least one GPU
  (`amount.worker.gpu`). A farm honours it; `openjd run` on a workstation ignores host
  requirements and runs the step on the local machine. Cancelation is NOTIFY_THEN_TERMINATE:
  SIGTERM, then SIGKILL after the notify period, in which ivi-render writes its checkpoint.
- Render: depends on Train; CHUNK[INT] task parameter over the frames (TASK_CHUNKING extension),
  `ivi-render render --job job.json --frames {{Task.Param.Frame}}`, each chunk idempotent.

The JobSpec's paths are used as written (absolute paths on shared storage); the template's PATH
parameter is the job file, which Deadline Cloud attaches with the bundle.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ivi_vfx.errors import ConfigError
from ivi_vfx.jobs import JOB_FILE, JobSpec

from . import job_frames
from .commands import describe, render_args, train_args

SPECIFICATION = "jobtemplate-2023-09"
EXTENSIONS = ["TASK_CHUNKING"]
TEMPLATE_FILE = "template.json"
PARAMETER_VALUES_FILE = "parameter_values.json"
TRAIN_TIMEOUT_S = 48 * 3600
"""Longest a Train task may run; the paper preset takes hours on one GPU."""
RENDER_TIMEOUT_S = 3600
NOTIFY_PERIOD_S = 120
"""Seconds between SIGTERM and SIGKILL: enough for a checkpoint of the paper network."""
JOB, DEVICE = "{{Param.JobFile}}", "{{Param.Device}}"


def _action(args: list[str], timeout: int) -> dict[str, Any]:
    return {"onRun": {"command": "{{Param.IviRender}}", "args": args, "timeout": timeout,
                      "cancelation": {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": NOTIFY_PERIOD_S}}}


def job_template(spec: JobSpec, *, frames: str, chunk_size: int = 10, device: str = "auto") -> dict[str, Any]:
    """The job template (a plain dict, as JSON or YAML would hold it).

    Args:
        spec: the job (its name titles the farm job).
        frames: the frames to render, a range string (the Frames parameter's default).
        chunk_size: frames per Render task (the ChunkSize parameter's default).
        device: ivi-render's --device on the farm nodes (the Device parameter's default).
    """
    return {
        "specificationVersion": SPECIFICATION,
        "extensions": EXTENSIONS,
        "name": f"ivi {spec.job_name}",
        "description": describe(spec),
        "parameterDefinitions": [
            {"name": "JobFile", "type": "PATH", "objectType": "FILE", "dataFlow": "IN", "default": JOB_FILE,
             "description": "The JobSpec (relative paths are relative to the bundle)."},
            {"name": "Frames", "type": "STRING", "default": frames, "description": "Frames to render."},
            {"name": "ChunkSize", "type": "INT", "default": chunk_size, "minValue": 1,
             "description": "Frames per Render task."},
            {"name": "Device", "type": "STRING", "default": device, "allowedValues": ["auto", "cpu", "cuda"],
             "description": "Where ivi-render runs its network."},
            {"name": "IviRender", "type": "STRING", "default": "ivi-render", "minLength": 1,
             "description": "The ivi-render command on the farm nodes (a name on PATH, or a full path)."},
        ],
        "steps": [
            {
                "name": "Train",
                "description": "Train the shot's network into the checkpoint folder (one GPU).",
                "hostRequirements": {"amounts": [{"name": "amount.worker.gpu", "min": 1}]},
                "script": {"actions": _action(train_args(JOB, DEVICE, "openjd"), TRAIN_TIMEOUT_S)},
            },
            {
                "name": "Render",
                "description": "Render a chunk of frames from the checkpoint (idempotent).",
                "dependencies": [{"dependsOn": "Train"}],
                "parameterSpace": {"taskParameterDefinitions": [
                    {"name": "Frame", "type": "CHUNK[INT]", "range": "{{Param.Frames}}",
                     "chunks": {"defaultTaskCount": "{{Param.ChunkSize}}", "rangeConstraint": "CONTIGUOUS"}},
                ]},
                "script": {"actions": _action(render_args(JOB, "{{Task.Param.Frame}}", DEVICE, "openjd"),
                                              RENDER_TIMEOUT_S)},
            },
        ],
    }


def validate(template: dict[str, Any]) -> None:
    """Check the template with Open Job Description's own model (openjd-model); ConfigError on a fault."""
    try:
        from openjd.model import DecodeValidationError, decode_job_template  # noqa: PLC0415  (extra 'openjd')
    except ImportError as exc:
        raise ConfigError("writing an Open Job Description bundle needs openjd-model: "
                          "pip install 'ivi-vfx[openjd]'") from exc
    try:
        decode_job_template(template=template, supported_extensions=EXTENSIONS)
    except DecodeValidationError as exc:
        raise ConfigError(f"the Open Job Description template is not valid: {exc}") from exc


def write_job(spec: JobSpec, folder: Path, *, chunk_size: int = 10, device: str = "auto") -> Path:
    """Write the job bundle into `folder` (created); returns the template's path.

    The bundle can be run locally (`openjd run DIR/template.json --step Render --run-dependencies`)
    or submitted (`deadline bundle submit DIR`).
    """
    if chunk_size < 1:
        raise ConfigError("--chunk-size must be at least 1 frame")
    frames = job_frames(spec)
    template = job_template(spec, frames=frames, chunk_size=chunk_size, device=device)
    validate(template)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec.save(folder / JOB_FILE)
    values = {"parameterValues": [{"name": "Frames", "value": frames}, {"name": "ChunkSize", "value": chunk_size}]}
    (folder / PARAMETER_VALUES_FILE).write_text(json.dumps(values, indent=2) + "\n")
    path = folder / TEMPLATE_FILE
    path.write_text(json.dumps(template, indent=2) + "\n")
    return path

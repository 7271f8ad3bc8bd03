"""An Open Job Description job bundle for a JobSpec (AWS Deadline Cloud; `openjd run` locally).

The bundle is a folder: `template.json` (the job template), `parameter_values.json` (Deadline
Cloud's bundle format) and `job.json` (the JobSpec, for its settings). The template has two steps:

- Train: one task, `ivi-render train`, with a host requirement of at least one GPU
  (`amount.worker.gpu`). A farm honours it; `openjd run` on a workstation ignores host
  requirements and runs the step on the local machine. Cancelation is NOTIFY_THEN_TERMINATE:
  SIGTERM, then SIGKILL after the notify period, in which ivi-render writes its checkpoint.
- Render: depends on Train; CHUNK[INT] task parameter over the frames (TASK_CHUNKING extension),
  `ivi-render render ... --frames {{Task.Param.Frame}}`, each chunk idempotent.

Every path of the job is a PATH job parameter with its dataFlow, and each task's command line
names them (`{{Param.PlateDir}}/{{Param.PlateFile}}`): the plate's, the mattes' and the clean
frames' folders IN, the output's folder OUT, the job folder INOUT. Deadline Cloud maps PATH
parameters to each worker's paths (storage profiles), and `deadline bundle submit` turns their
dataFlow into job attachments (IN folders uploaded, OUT folders downloaded); a path inside job.json
it would never see. A frame pattern is not a file, so the PATH parameter is its folder (uploaded
whole as an attachment) and the pattern's file name a STRING parameter. The actions' arguments go to
ivi-render as an argument list (no shell), so no path is ever read as a command.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ivi_vfx.errors import ConfigError
from ivi_vfx.jobs import JOB_FILE, JobSpec

from . import FarmOptions, job_frames
from .commands import FOLDER, OUT_PATH, check_device, describe, job_paths, render_args, train_args
from .quoting import check_path

SPECIFICATION = "jobtemplate-2023-09"
EXTENSIONS = ["TASK_CHUNKING"]
TEMPLATE_FILE = "template.json"
PARAMETER_VALUES_FILE = "parameter_values.json"
"""The parameter values as Deadline Cloud's bundles hold them (`deadline bundle submit` reads it)."""
OPENJD_PARAMETERS_FILE = "openjd_parameters.json"
"""The same values as `openjd run -p file://...` reads them (a JSON object)."""
TRAIN_TIMEOUT_S = 48 * 3600
"""Longest a Train task may run; the paper preset takes hours on one GPU."""
RENDER_TIMEOUT_S = 3600
NOTIFY_PERIOD_S = 120
"""Seconds between SIGTERM and SIGKILL: enough for a checkpoint of the paper network."""
PATH_PARAMETERS: dict[str, tuple[str, str, str]] = {
    "plate": ("Plate", "IN", "The plate"),
    "mask": ("Mask", "IN", "The matte sequence"),
    "key_mask": ("KeyMask", "IN", "The key frames' roto"),
    "clean": ("Clean", "IN", "The clean reference frames"),
    OUT_PATH: ("Out", "OUT", "The clean plate written"),
}
"""JobSpec pattern field -> (parameter name stem, dataFlow of its folder, what it is)."""
JOB, DEVICE = "{{Param.JobFile}}", "{{Param.Device}}"


def _action(args: list[str], timeout: int) -> dict[str, Any]:
    return {"onRun": {"command": "{{Param.IviRender}}", "args": args, "timeout": timeout,
                      "cancelation": {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": NOTIFY_PERIOD_S}}}


def path_values(spec: JobSpec) -> dict[str, str]:
    """The path parameters' values for the job: each pattern's folder and file name, and the job folder."""
    values: dict[str, str] = {}
    for key, value in job_paths(spec).items():
        if key == FOLDER:
            values["CheckpointDir"] = value
        else:
            stem = PATH_PARAMETERS[key][0]
            values[f"{stem}Dir"], values[f"{stem}File"] = str(Path(value).parent), Path(value).name
    return values


def _path_definitions(values: dict[str, str]) -> list[dict[str, Any]]:
    definitions: list[dict[str, Any]] = []
    for stem, flow, what in PATH_PARAMETERS.values():
        if f"{stem}Dir" in values:
            definitions += [
                {"name": f"{stem}Dir", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": flow,
                 "description": f"{what}: its folder."},
                {"name": f"{stem}File", "type": "STRING", "default": values[f"{stem}File"], "minLength": 1,
                 "description": f"{what}: its file name pattern in that folder (plate.####.exr)."},
            ]
    definitions.append({"name": "CheckpointDir", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "INOUT",
                        "description": "The job folder: Train writes the checkpoints, Render reads them."})
    return definitions


def job_template(spec: JobSpec, *, frames: str, options: FarmOptions = FarmOptions()) -> dict[str, Any]:
    """The job template (a plain dict, as JSON or YAML would hold it).

    Args:
        spec: the job (its name titles the farm job; its paths are the PATH parameters' defaults).
        frames: the frames to render, a range string (the Frames parameter's default).
        options: chunk size, device and the ivi-render command (the parameters' defaults).

    The PATH parameters have no default (Open Job Description takes only relative defaults inside the
    template's folder): their values are in parameter_values.json (Deadline Cloud) and
    openjd_parameters.json (`openjd run -p file://...`), written beside the template.
    """
    values = path_values(spec)
    paths = {key: f"{{{{Param.{stem}Dir}}}}/{{{{Param.{stem}File}}}}" for key, (stem, _, _) in PATH_PARAMETERS.items()
             if f"{stem}Dir" in values}
    paths[FOLDER] = "{{Param.CheckpointDir}}"
    return {
        "specificationVersion": SPECIFICATION,
        "extensions": EXTENSIONS,
        "name": f"ivi {spec.job_name}",
        "description": describe(spec),
        "parameterDefinitions": [
            {"name": "JobFile", "type": "PATH", "objectType": "FILE", "dataFlow": "IN", "default": JOB_FILE,
             "description": "The JobSpec, for its settings (relative paths are relative to the bundle)."},
            *_path_definitions(values),
            {"name": "Frames", "type": "STRING", "default": frames, "description": "Frames to render."},
            {"name": "ChunkSize", "type": "INT", "default": options.chunk_size, "minValue": 1,
             "description": "Frames per Render task."},
            {"name": "Device", "type": "STRING", "default": options.device, "minLength": 1,
             "description": "Where ivi-render runs its network: auto, cpu, cuda or cuda:N."},
            {"name": "IviRender", "type": "STRING", "default": options.ivi_render, "minLength": 1,
             "description": "The ivi-render command on the farm nodes (a name on PATH, or a full path)."},
        ],
        "steps": [
            {
                "name": "Train",
                "description": "Train the shot's network into the checkpoint folder (one GPU).",
                "hostRequirements": {"amounts": [{"name": "amount.worker.gpu", "min": 1}]},
                "script": {"actions": _action(train_args(spec, JOB, paths, DEVICE, "openjd"), TRAIN_TIMEOUT_S)},
            },
            {
                "name": "Render",
                "description": "Render a chunk of frames from the checkpoint (idempotent).",
                "dependencies": [{"dependsOn": "Train"}],
                "parameterSpace": {"taskParameterDefinitions": [
                    {"name": "Frame", "type": "CHUNK[INT]", "range": "{{Param.Frames}}",
                     "chunks": {"defaultTaskCount": "{{Param.ChunkSize}}", "rangeConstraint": "CONTIGUOUS"}},
                ]},
                "script": {"actions": _action(render_args(spec, JOB, paths, "{{Task.Param.Frame}}", DEVICE, "openjd"),
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


def write_job(spec: JobSpec, folder: Path, options: FarmOptions = FarmOptions()) -> Path:
    """Write the job bundle into `folder` (created); returns the template's path.

    The bundle can be run locally (`openjd run DIR/template.json -p file://DIR/openjd_parameters.json
    --step Render --run-dependencies`) or submitted (`deadline bundle submit DIR`).
    """
    if options.chunk_size < 1:
        raise ConfigError("--chunk-size must be at least 1 frame")
    check_device(options.device)
    for key, value in job_paths(spec).items():
        check_path(key, value)
    frames = job_frames(spec)
    folder = Path(folder)
    template = job_template(spec, frames=frames, options=options)
    validate(template)
    folder.mkdir(parents=True, exist_ok=True)
    spec.save(folder / JOB_FILE)
    values: dict[str, object] = {"Frames": frames, "ChunkSize": options.chunk_size, **path_values(spec)}
    listed = [{"name": name, "value": value} for name, value in values.items()]
    (folder / PARAMETER_VALUES_FILE).write_text(json.dumps({"parameterValues": listed}, indent=2,
                                                           ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / OPENJD_PARAMETERS_FILE).write_text(json.dumps(values, indent=2, ensure_ascii=False) + "\n",
                                                 encoding="utf-8")
    path = folder / TEMPLATE_FILE
    path.write_text(json.dumps(template, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path

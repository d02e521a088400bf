"""Run a GitHub Actions workflow's ``run:`` steps the way a hosted Ubuntu runner does.

Not a GitHub Actions implementation: just enough of one to execute ModelPilot's
reusable workflow faithfully in a test. The caller workflow's job is resolved to the
reusable workflow it ``uses:``; its ``with:`` become ``inputs`` (defaults from
``on.workflow_call.inputs``); jobs run in ``needs`` order, skipped when their ``if:``
is false; within a job, steps run in order. For every ``run:`` step the runner's
environment is set as GitHub sets it (``CI``, ``GITHUB_*``, ``RUNNER_*``, a fresh
``GITHUB_OUTPUT``, ``GITHUB_ENV``, ``GITHUB_PATH`` and ``GITHUB_STEP_SUMMARY`` file per
step), the workflow, job and step ``env:`` are laid over it, and the script runs with
``bash --noprofile --norc -eo pipefail``. ``uses:`` steps (checkout, setup-python,
cloud sign-in) are played by handlers the test supplies.

Expressions (``${{ … }}`` and ``if:``) support what the templates use: context
properties (``inputs.*``, ``github.*``, ``vars.*``, ``env.*``, ``steps.*``, ``needs.*``),
string, number and boolean literals, ``==``, ``!=``, ``!``, ``&&``, ``||`` and parentheses.
Anything else raises, so a template that starts using more fails loudly here.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\))|(?P<num>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*))"
)


class ExpressionError(Exception):
    """An expression the emulation does not support (or a malformed one)."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ExpressionError(f"cannot read expression {text!r} at {text[pos:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _lookup(context: dict[str, Any], path: str) -> Any:
    if path in {"true", "false", "null"}:
        return {"true": True, "false": False, "null": None}[path]
    head, *rest = path.split(".")
    if head not in context:
        raise ExpressionError(f"unknown context {head!r} in {path!r}")
    value: Any = context[head]
    for part in rest:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _truthy(value: Any) -> bool:
    return value not in (None, False, "", 0)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


def evaluate(text: str, context: dict[str, Any]) -> Any:
    """Evaluate one expression (the inside of ``${{ }}``, or an ``if:``)."""
    tokens = _tokens(text)
    pos = 0

    def peek() -> str | None:
        return tokens[pos][1] if pos < len(tokens) else None

    def primary() -> Any:
        nonlocal pos
        kind, value = tokens[pos]
        pos += 1
        if value == "(":
            result = disjunction()
            if peek() != ")":
                raise ExpressionError(f"missing ')' in {text!r}")
            pos += 1
            return result
        if value == "!":
            return not _truthy(primary())
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value)
        if kind == "name":
            if peek() == "(":
                raise ExpressionError(f"functions are not supported: {text!r}")
            return _lookup(context, value)
        raise ExpressionError(f"unexpected {value!r} in {text!r}")

    def comparison() -> Any:
        nonlocal pos
        left = primary()
        while peek() in {"==", "!="}:
            op = tokens[pos][1]
            pos += 1
            right = primary()
            left = _equal(left, right) if op == "==" else not _equal(left, right)
        return left

    def conjunction() -> Any:
        nonlocal pos
        left = comparison()
        while peek() == "&&":
            pos += 1
            right = comparison()
            left = right if _truthy(left) else left
        return left

    def disjunction() -> Any:
        nonlocal pos
        left = conjunction()
        while peek() == "||":
            pos += 1
            right = conjunction()
            left = left if _truthy(left) else right
        return left

    result = disjunction()
    if pos != len(tokens):
        raise ExpressionError(f"trailing tokens in {text!r}")
    return result


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def interpolate(value: Any, context: dict[str, Any]) -> Any:
    """Replace every ``${{ expr }}`` in a string (a string that is only one expression keeps its type)."""
    if not isinstance(value, str):
        return value
    whole = re.fullmatch(r"\s*\$\{\{(.*?)\}\}\s*", value, re.S)
    if whole:
        return evaluate(whole.group(1), context)
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: _text(evaluate(m.group(1), context)), value, flags=re.S)


def condition(text: Any, context: dict[str, Any]) -> bool:
    """Evaluate an ``if:`` (with or without ``${{ }}``)."""
    if text is None:
        return True
    if isinstance(text, bool):
        return text
    inner = re.fullmatch(r"\s*\$\{\{(.*)\}\}\s*", str(text), re.S)
    return _truthy(evaluate(inner.group(1) if inner else str(text), context))


def load(path: Path) -> dict[str, Any]:
    """Read a workflow file (YAML 1.1 reads the key ``on`` as True: it is put back)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    return data


@dataclass
class StepRecord:
    """What one step did."""

    job: str
    name: str
    kind: str
    status: str
    command: str = ""
    output: str = ""
    summary: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


#: ``handler(with_, env) -> environment variables the action exports for later steps``
ActionHandler = Callable[[dict[str, Any], dict[str, str]], dict[str, str]]


class JobFailed(Exception):
    """A step exited non-zero."""

    def __init__(self, record: StepRecord, code: int) -> None:
        super().__init__(f"step {record.name!r} of job {record.job!r} exited {code}:\n{record.output}")
        self.record = record
        self.code = code


@dataclass
class Runner:
    """A hosted runner for one workflow run."""

    workspace: Path
    runner_temp: Path
    github: dict[str, str]
    base_env: dict[str, str]
    actions: dict[str, ActionHandler]
    vars: dict[str, str] = field(default_factory=dict)
    records: list[StepRecord] = field(default_factory=list)

    def _github_env(self, job: str) -> dict[str, str]:
        g = self.github
        return {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKFLOW": g["workflow"],
            "GITHUB_RUN_ID": g["run_id"],
            "GITHUB_RUN_NUMBER": g["run_number"],
            "GITHUB_RUN_ATTEMPT": g["run_attempt"],
            "GITHUB_JOB": job,
            "GITHUB_ACTOR": g["actor"],
            "GITHUB_TRIGGERING_ACTOR": g["triggering_actor"],
            "GITHUB_REPOSITORY": g["repository"],
            "GITHUB_REPOSITORY_OWNER": g["repository_owner"],
            "GITHUB_EVENT_NAME": g["event_name"],
            "GITHUB_SHA": g["sha"],
            "GITHUB_REF": g["ref"],
            "GITHUB_REF_NAME": g["ref_name"],
            "GITHUB_SERVER_URL": g["server_url"],
            "GITHUB_API_URL": g["api_url"],
            "GITHUB_GRAPHQL_URL": g["graphql_url"],
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_EVENT_PATH": str(self.runner_temp / "event.json"),
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
            "RUNNER_NAME": "GitHub Actions 1",
            "RUNNER_ENVIRONMENT": "github-hosted",
            "RUNNER_TEMP": str(self.runner_temp),
            "RUNNER_TOOL_CACHE": str(self.runner_temp / "toolcache"),
        }

    # -- workflow_call --------------------------------------------------------------------
    def run_caller(self, caller: Path) -> dict[str, dict[str, Any]]:
        """Run every job of ``caller`` (each ``uses:`` a local reusable workflow); return the jobs' results."""
        workflow = load(caller)
        results: dict[str, dict[str, Any]] = {}
        for name, job in workflow["jobs"].items():
            uses = job["uses"]
            if not uses.startswith("./"):
                raise ExpressionError(f"job {name} must use a local reusable workflow, not {uses}")
            context = {"github": self.github, "vars": self.vars, "inputs": {}, "env": {}}
            given = {k: interpolate(v, context) for k, v in (job.get("with") or {}).items()}
            results[name] = self.run_reusable(self.workspace / uses[2:], given)
        return results

    def run_reusable(self, path: Path, given: dict[str, Any]) -> dict[str, Any]:
        """Run a ``workflow_call`` workflow with inputs ``given``; return each job's outputs."""
        workflow = load(path)
        declared = workflow["on"]["workflow_call"].get("inputs", {})
        unknown = set(given) - set(declared)
        if unknown:
            raise ExpressionError(f"inputs not declared by {path.name}: {sorted(unknown)}")
        inputs: dict[str, Any] = {}
        for name, spec in declared.items():
            if spec.get("required") and name not in given:
                raise ExpressionError(f"required input {name} missing")
            value = given.get(name, spec.get("default"))
            if spec.get("type") == "boolean":
                value = value if isinstance(value, bool) else str(value).lower() == "true"
            elif value is not None:
                value = _text(value)
            inputs[name] = value
        base = {"github": self.github, "vars": self.vars, "inputs": inputs}
        workflow_env = {k: _text(interpolate(v, {**base, "env": {}})) for k, v in (workflow.get("env") or {}).items()}
        done: dict[str, dict[str, Any]] = {}
        pending = dict(workflow["jobs"])
        while pending:
            ready = [n for n, j in pending.items() if all(d in done for d in _needs(j))]
            if not ready:
                raise ExpressionError(f"jobs wait on each other: {sorted(pending)}")
            for name in ready:
                job = pending.pop(name)
                context = {**base, "env": workflow_env, "needs": {d: done[d] for d in _needs(job)}}
                if not condition(job.get("if"), context):
                    done[name] = {"result": "skipped", "outputs": {}}
                    self.records.append(StepRecord(name, "(job)", "job", "skipped"))
                    continue
                done[name] = self._job(name, job, context, workflow_env)
        return done

    def _job(
        self, name: str, job: dict[str, Any], context: dict[str, Any], workflow_env: dict[str, str]
    ) -> dict[str, Any]:
        env = dict(workflow_env)
        env.update({k: _text(interpolate(v, {**context, "env": env})) for k, v in (job.get("env") or {}).items()})
        defaults = (job.get("defaults") or {}).get("run", {})
        workdir = interpolate(defaults.get("working-directory", "."), {**context, "env": env})
        shell = defaults.get("shell", "bash")
        if shell != "bash":
            raise ExpressionError(f"only bash steps are run here, not {shell}")
        steps: dict[str, dict[str, Any]] = {}
        path_extra: list[str] = []
        for index, step in enumerate(job["steps"]):
            ctx = {**context, "env": env, "steps": steps, "job": {"status": "success"}}
            label = step.get("name") or step.get("uses") or f"step {index + 1}"
            label = _text(interpolate(label, ctx))
            if not condition(step.get("if"), ctx):
                self.records.append(StepRecord(name, label, "uses" if "uses" in step else "run", "skipped"))
                continue
            step_env = dict(env)
            step_env.update(
                {k: _text(interpolate(v, {**ctx, "env": step_env})) for k, v in (step.get("env") or {}).items()}
            )
            if "uses" in step:
                action = step["uses"].split("@")[0]
                handler = self.actions.get(action)
                if handler is None:
                    raise ExpressionError(f"no handler for action {step['uses']}")
                with_ = {k: interpolate(v, {**ctx, "env": step_env}) for k, v in (step.get("with") or {}).items()}
                exported = handler(with_, step_env)
                for key, value in exported.items():
                    if key == "PATH":
                        path_extra.insert(0, value)
                    else:
                        env[key] = value
                self.records.append(StepRecord(name, label, "uses", "success"))
                continue
            _record, outputs, exported_env, exported_path = self._run_step(
                name, label, step["run"], step_env, path_extra, self.workspace / workdir
            )
            if step.get("id"):
                steps[step["id"]] = {"outputs": outputs, "outcome": "success", "conclusion": "success"}
            env.update(exported_env)
            path_extra[:0] = exported_path
        ctx = {**context, "env": env, "steps": steps}
        outputs = {k: _text(interpolate(v, ctx)) for k, v in (job.get("outputs") or {}).items()}
        return {"result": "success", "outputs": outputs}

    def _run_step(
        self, job: str, label: str, script: str, env: dict[str, str], path_extra: list[str], cwd: Path
    ) -> tuple[StepRecord, dict[str, str], dict[str, str], list[str]]:
        files = self.runner_temp / "_runner_file_commands"
        files.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        names = {
            k: files / f"{k.lower()}_{token}"
            for k in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY")
        }
        for path in names.values():
            path.write_text("", encoding="utf-8")
        script_path = self.runner_temp / f"{token}.sh"
        script_path.write_text(script, encoding="utf-8")
        full = {**self.base_env, **self._github_env(job), **env, **{k: str(v) for k, v in names.items()}}
        full["PATH"] = ":".join([*path_extra, self.base_env["PATH"]])
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_path)],
            cwd=cwd,
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
        )
        outputs = _parse_file_command(names["GITHUB_OUTPUT"].read_text(encoding="utf-8"))
        exported = _parse_file_command(names["GITHUB_ENV"].read_text(encoding="utf-8"))
        exported_path = [line for line in names["GITHUB_PATH"].read_text(encoding="utf-8").splitlines() if line]
        record = StepRecord(
            job,
            label,
            "run",
            "success" if done.returncode == 0 else "failure",
            command=script,
            output=done.stdout,
            summary=names["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8"),
            outputs=outputs,
        )
        self.records.append(record)
        if done.returncode != 0:
            raise JobFailed(record, done.returncode)
        return record, outputs, exported, exported_path

    def transcript(self) -> str:
        """The run as a log: each step's name, command and what it printed."""
        lines: list[str] = []
        for r in self.records:
            lines.append(f"== [{r.job}] {r.name} ({r.status})")
            if r.kind == "run" and r.status != "skipped":
                lines += [f"$ {line}" for line in r.command.rstrip().splitlines()]
                lines += [line for line in r.output.rstrip().splitlines()]
        return "\n".join(lines)


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def _parse_file_command(text: str) -> dict[str, str]:
    """Parse ``name=value`` lines and ``name<<DELIMITER`` blocks (GitHub's file command format)."""
    values: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            i += 1
            while lines[i] != delimiter:
                block.append(lines[i])
                i += 1
            values[name] = "\n".join(block)
        elif line:
            name, _, value = line.partition("=")
            values[name] = value
        i += 1
    return values

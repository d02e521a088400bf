"""Lineage from the CI run that builds a package: commit, repository, run, who started it.

Read from the variables GitHub Actions, Azure Pipelines and GitLab CI set for every
job. Only values that stay the same when a run is re-run are used (the run id, not
the attempt; the actor who started the run, not who re-ran it), so re-running a
failed pipeline builds the same manifest and pushes nothing new.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ci_lineage", "ci_provider"]


def ci_provider(env: Mapping[str, str]) -> str | None:
    """Return ``"github"``, ``"azure-pipelines"``, ``"gitlab"`` or None (not in a known CI)."""
    if env.get("GITHUB_ACTIONS") == "true":
        return "github"
    if env.get("TF_BUILD", "").lower() == "true":
        return "azure-pipelines"
    if env.get("GITLAB_CI") == "true":
        return "gitlab"
    return None


def _github(env: Mapping[str, str]) -> dict[str, str]:
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    repo = env.get("GITHUB_REPOSITORY", "")
    run = env.get("GITHUB_RUN_ID", "")
    return {
        "code_revision": env.get("GITHUB_SHA", ""),
        "repository": f"{server}/{repo}" if repo else "",
        "run_id": f"github:{run}" if run else "",
        "run_url": f"{server}/{repo}/actions/runs/{run}" if repo and run else "",
        "built_by": f"github:{env['GITHUB_ACTOR']}" if env.get("GITHUB_ACTOR") else "",
    }


def _azure(env: Mapping[str, str]) -> dict[str, str]:
    collection = env.get("SYSTEM_COLLECTIONURI", "").rstrip("/")
    project = env.get("SYSTEM_TEAMPROJECT", "")
    build = env.get("BUILD_BUILDID", "")
    requested = env.get("BUILD_REQUESTEDFOREMAIL") or env.get("BUILD_REQUESTEDFOR", "")
    return {
        "code_revision": env.get("BUILD_SOURCEVERSION", ""),
        "repository": env.get("BUILD_REPOSITORY_URI", ""),
        "run_id": f"azure-pipelines:{build}" if build else "",
        "run_url": f"{collection}/{project}/_build/results?buildId={build}" if collection and project and build else "",
        "built_by": f"azure-devops:{requested}" if requested else "",
    }


def _gitlab(env: Mapping[str, str]) -> dict[str, str]:
    pipeline = env.get("CI_PIPELINE_ID", "")
    return {
        "code_revision": env.get("CI_COMMIT_SHA", ""),
        "repository": env.get("CI_PROJECT_URL", ""),
        "run_id": f"gitlab:{pipeline}" if pipeline else "",
        "run_url": env.get("CI_PIPELINE_URL", ""),
        "built_by": f"gitlab:{env['GITLAB_USER_LOGIN']}" if env.get("GITLAB_USER_LOGIN") else "",
    }


def ci_lineage(env: Mapping[str, str]) -> dict[str, str]:
    """Return the lineage fields the CI run in ``env`` tells (empty values left out)."""
    provider = ci_provider(env)
    if provider is None:
        return {}
    fields = {"github": _github, "azure-pipelines": _azure, "gitlab": _gitlab}[provider](env)
    return {k: v for k, v in fields.items() if v}

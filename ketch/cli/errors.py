"""Errors as kubectl prints them, so scripts and people see the familiar wording."""

from __future__ import annotations


class CommandError(Exception):
    """A mistake the user can fix (bad flag combination, unknown type, ...): `error: <msg>`."""


def status_text(status: dict, fallback_code: int = 0) -> str:
    """kubectl's StandardErrorMessage for an API Status.

    422 Invalid with details: `The Deployment "web" is invalid: <field>: <message>`;
    otherwise `Error from server (<Reason>): <message>`.
    """
    reason = status.get("reason") or ""
    message = status.get("message") or ""
    details = status.get("details") or {}
    code = status.get("code") or fallback_code
    if reason == "Invalid" or (code == 422 and not reason):
        text = "The request is invalid"
        if not details:
            return f"{text}: {message}" if message else text
        if details.get("kind") or details.get("name"):
            text = f'The {details.get("kind", "")} "{details.get("name", "")}" is invalid'
        causes = [
            f'{c["field"]}: {c.get("message", "")}' if c.get("field") else c.get("message", "")
            for c in details.get("causes") or []
        ]
        if len(causes) == 1:
            return f"{text}: {causes[0]}"
        if causes:  # kubectl 1.32: one cause per line
            return f"{text}: \n" + "\n".join(f"* {c}" for c in causes)
        return text
    if reason:
        return f"Error from server ({reason}): {message}"
    return f"Error from server: {message}"


def with_source(status: dict, verb: str, source: str | None) -> dict:
    """kubectl's AddSourceToErr: `error when creating "web.yaml": <message>`."""
    if not source or status.get("reason") == "Invalid":
        return status
    out = dict(status)
    out["message"] = f'error when {verb} "{source}": {status.get("message", "")}'
    return out


def describe_error(e: BaseException) -> str | None:
    """The line to print for an error a user can act on; None for a bug (let it raise)."""
    from ketch.client.kubeconfig import KubeconfigError
    from ketch.client.rest import ApiStatusError, TransportError

    if isinstance(e, ApiStatusError):
        return status_text(e.status, e.code)
    if isinstance(e, TransportError):
        return str(e)
    if isinstance(e, (KubeconfigError, CommandError)):
        return f"error: {e}"
    if isinstance(e, FileNotFoundError):
        return f"error: the path {e.filename!r} does not exist"
    return None

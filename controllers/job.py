"""Job: run pods until ``completions`` succeed, ``parallelism`` at a time.

Fails the Job after ``backoffLimit`` pod failures (a failed pod, or a container
restart under restartPolicy OnFailure, counts one) or when
``activeDeadlineSeconds`` passes; deletes it ``ttlSecondsAfterFinished`` after
it finished. Failed pods are re-created after an exponential delay (10 s
doubling, capped at 6 min) as Kubernetes does.
"""

from __future__ import annotations

import asyncio

from controllers.controller import Controller, Expectations, InformerSet
from controllers.ownership import controller_ref, pod_from_template
from controllers.pod_state import deletion_rank, is_active, is_ready
from ketch.api.errors import ApiError
from ketch.api.resources import lookup
from ketch.api.timeutil import now, now_rfc3339, parse_rfc3339

PODS = lookup("", "v1", "pods")
JOBS = lookup("batch", "v1", "jobs")

POD_FAILURE_BACKOFF = 10.0
MAX_POD_FAILURE_BACKOFF = 360.0


def _condition(job: dict, type_: str) -> dict | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_ and c.get("status") == "True":
            return c
    return None


def is_finished(job: dict) -> bool:
    return bool(_condition(job, "Complete") or _condition(job, "Failed"))


def _restarts(pod: dict) -> int:
    return sum(c.get("restartCount", 0) for c in (pod.get("status") or {}).get("containerStatuses") or [])


class JobController(Controller):
    name = "job"
    workers = 2

    def __init__(self, client, informers: InformerSet, recorder) -> None:  # noqa: ANN001
        super().__init__(client, informers, recorder)
        self.jobs = informers.get(JOBS)
        self.pods = informers.get(PODS)
        self.expectations = Expectations()
        self.jobs.add_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.pods.add_handler(self._pod_added, lambda old, new: self._pod_event(new), self._pod_deleted)

    def _job_key(self, pod: dict) -> str | None:
        ref = controller_ref(pod)
        if not ref or ref.get("kind") != "Job":
            return None
        return f"{pod['metadata']['namespace']}/{ref['name']}"

    def _pod_added(self, pod: dict) -> None:
        key = self._job_key(pod)
        if key:
            self.expectations.observed_add(key)
            self.queue.add(key)

    def _pod_event(self, pod: dict) -> None:
        key = self._job_key(pod)
        if key:
            self.queue.add(key)

    def _pod_deleted(self, pod: dict) -> None:
        key = self._job_key(pod)
        if key:
            self.expectations.observed_delete(key)
            self.queue.add(key)

    def owned_pods(self, job: dict) -> list[dict]:
        uid = job["metadata"]["uid"]
        return [p for p in self.pods.store.list() if (controller_ref(p) or {}).get("uid") == uid]

    async def reconcile(self, key: str) -> None:
        job = self.jobs.store.get(key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        if is_finished(job):
            await self._ttl(key, job)
            return
        spec, status = job["spec"], dict(job.get("status") or {})
        pods = self.owned_pods(job)
        active = [p for p in pods if is_active(p)]
        succeeded = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")
        failed_pods = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
        restarts = sum(_restarts(p) for p in pods) if _restart_policy(job) == "OnFailure" else 0
        # Pods the controller already deleted were counted into status when seen.
        failed = max(failed_pods, int(status.get("failed", 0)))
        succeeded = max(succeeded, int(status.get("succeeded", 0)))
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1))
        if not status.get("startTime"):
            status["startTime"] = now_rfc3339()

        finished: tuple[str, str, str] | None = None
        if completions is not None and succeeded >= int(completions):
            finished = ("Complete", "", "")
        elif completions is None and succeeded > 0 and not active:
            finished = ("Complete", "", "")  # work-queue style: any success and nothing running
        elif failed + restarts > int(spec.get("backoffLimit", 6)):
            finished = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif spec.get("activeDeadlineSeconds") is not None:
            elapsed = (now() - parse_rfc3339(status["startTime"])).total_seconds()
            if elapsed >= int(spec["activeDeadlineSeconds"]):
                finished = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
            else:
                self.queue.add_after(key, int(spec["activeDeadlineSeconds"]) - elapsed + 0.5)

        if finished:
            for pod in active:  # a finished Job stops what still runs
                await self._delete_pod(pod)
            active = []
        elif self.expectations.satisfied(key) and not spec.get("suspend"):
            remaining = (int(completions) - succeeded) if completions is not None else parallelism
            want = max(0, min(parallelism, remaining))
            if len(active) < want:
                delay = self._failure_delay(failed)
                if delay > 0 and failed and not self._delay_passed(pods, delay):
                    self.queue.add_after(key, delay)
                else:
                    await self._create(key, job, want - len(active))
            elif len(active) > want:
                for pod in sorted(active, key=deletion_rank)[: len(active) - want]:
                    await self._delete_pod(pod)

        status.update({
            "active": len(active),
            "ready": sum(1 for p in active if is_ready(p)),
            "succeeded": succeeded,
            "failed": failed,
        })
        if finished:
            type_, reason, message = finished
            stamp = now_rfc3339()
            cond = {"type": type_, "status": "True", "lastProbeTime": stamp, "lastTransitionTime": stamp}
            if reason:
                cond.update(reason=reason, message=message)
            status["conditions"] = [*(status.get("conditions") or []), cond]
            if type_ == "Complete":
                status["completionTime"] = stamp
            self.recorder.event(job, "Normal" if type_ == "Complete" else "Warning",
                                "Completed" if type_ == "Complete" else reason,
                                "Job completed" if type_ == "Complete" else message)
        for k in ("active", "ready", "succeeded", "failed"):
            if not status.get(k):
                status.pop(k, None)  # omitempty, as Kubernetes serializes
        if status != (job.get("status") or {}):
            try:
                await self.client.update_status(JOBS, {**job, "status": status})
            except ApiError as err:
                if err.code not in (404, 409):
                    raise
                self.queue.add_after(key, 0.2)

    def _failure_delay(self, failed: int) -> float:
        if failed <= 0:
            return 0.0
        return min(POD_FAILURE_BACKOFF * 2 ** (failed - 1), MAX_POD_FAILURE_BACKOFF)

    def _delay_passed(self, pods: list[dict], delay: float) -> bool:
        last = ""
        for p in pods:
            if (p.get("status") or {}).get("phase") == "Failed":
                for c in (p.get("status") or {}).get("containerStatuses") or []:
                    finished = ((c.get("state") or {}).get("terminated") or {}).get("finishedAt") or ""
                    last = max(last, finished)
        if not last:
            return True
        return (now() - parse_rfc3339(last)).total_seconds() >= delay

    async def _create(self, key: str, job: dict, count: int) -> None:
        template = job["spec"]["template"]
        pod_template = {**template, "metadata": {
            **(template.get("metadata") or {}),
            "labels": {**((template.get("metadata") or {}).get("labels") or {}),
                       "job-name": job["metadata"]["name"],
                       "batch.kubernetes.io/job-name": job["metadata"]["name"],
                       "controller-uid": job["metadata"]["uid"],
                       "batch.kubernetes.io/controller-uid": job["metadata"]["uid"]},
        }}
        self.expectations.expect(key, adds=count)
        results = await asyncio.gather(
            *(self.client.create(PODS, pod_from_template(job, pod_template)) for _ in range(count)),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        for _ in errors:
            self.expectations.observed_add(key)
        if errors:
            self.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {errors[0]}")
            raise errors[0]
        for pod in results:
            self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")

    async def _delete_pod(self, pod: dict) -> None:
        try:
            await self.client.delete(PODS, pod["metadata"]["name"], pod["metadata"]["namespace"])
        except ApiError as err:
            if err.code != 404:
                raise

    async def _ttl(self, key: str, job: dict) -> None:
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        cond = _condition(job, "Complete") or _condition(job, "Failed") or {}
        finished_at = (job.get("status") or {}).get("completionTime") or cond.get("lastTransitionTime")
        if not finished_at:
            return
        left = int(ttl) - (now() - parse_rfc3339(finished_at)).total_seconds()
        if left > 0:
            self.queue.add_after(key, left + 0.1)
            return
        try:
            await self.client.delete(JOBS, job["metadata"]["name"], job["metadata"]["namespace"],
                                     propagation_policy="Foreground")
        except ApiError as err:
            if err.code != 404:
                raise


def _restart_policy(job: dict) -> str:
    return ((job["spec"].get("template") or {}).get("spec") or {}).get("restartPolicy", "Never")

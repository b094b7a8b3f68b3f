"""Reading one job by its id: from the cache; from the API when the cache does not have it yet
(e.g. just created through another replica); from its claim when its ReportJob is still being
created (submission.claimed_job)."""

from reportjobs_gateway.ports import Cache, JobStore, ReportJob
from reportjobs_gateway.submission import claimed_job
from reportjobs_model.naming import is_job_name


async def find_job(store: JobStore, cache: Cache | None, job_id: str) -> ReportJob | None:
    if not is_job_name(job_id):
        return None
    found = cache.job(job_id) if cache is not None and cache.ready() else None
    if found is None:
        found = (await store.get(job_id)).obj
    if found is None:
        found = await claimed_job(store, job_id=job_id)
    return found

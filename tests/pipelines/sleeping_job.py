"""A job whose only op sleeps: a run that stays STARTED until its worker is killed
(tests/pipelines/test_abandoned_runs.py). Loaded by module name by Dagster's run worker."""

import time

import dagster as dg


@dg.op
def sleep_a_minute() -> None:
    time.sleep(60)


@dg.job(executor_def=dg.in_process_executor)
def sleeping_job() -> None:
    sleep_a_minute()

"""SQL of the serving layer's quality views and the catalog's quality score.

All of it is computed at query time from Delta tables (runs, quarantine, check history) and
the dataset specs, so operators see the current state even when a blocking failure kept the
serving file from being rebuilt, and freshness is measured against the clock, not the build.
"""

from __future__ import annotations

# Checks are Dagster asset checks: evaluated once per run, over every file the run loaded
# (rows_reconcile per batch, quarantine_threshold on the worst file), and stored under the
# run's newest batch. So a load's row shows the checks of its batch or of the run that
# loaded it: the first of several files loaded together has the run's checks too.
RUNS = """
WITH r AS MATERIALIZED ({runs}),
checks AS (
    SELECT b.dataset, b.batch_id, h."check", h.passed
    FROM (SELECT DISTINCT dataset, batch_id, dagster_run_id FROM r) b
    JOIN ({history}) h
      ON h.dataset = b.dataset
     AND (h.batch_id = b.batch_id OR h.dagster_run_id = b.dagster_run_id)
    QUALIFY row_number() OVER (PARTITION BY b.dataset, b.batch_id, h."check"
                               ORDER BY h.evaluated_at DESC) = 1
)
SELECT r.* EXCLUDE (drift_decision),
       epoch(r.finished_at - r.started_at) AS duration_s,
       coalesce(r.drift_decision, CASE WHEN r.extra_columns = '[]' THEN 'none'
            ELSE 'ignored: ' || r.extra_columns END) AS drift_decision,
       c.checks_passed, c.checks_failed
FROM r
LEFT JOIN (
    SELECT dataset, batch_id,
           count(*) FILTER (WHERE passed) AS checks_passed,
           list("check" ORDER BY "check") FILTER (WHERE NOT passed) AS checks_failed
    FROM checks
    GROUP BY ALL
) c USING (dataset, batch_id)
"""

# Failing checks now (latest outcome per check), with since when they fail, plus the latest
# load's contract failures per column and check with a few (masked) example values. A row is
# its sheet and number: workbooks read with `sheets:` number rows per sheet. A contract
# failure fails since its first quarantine in the loads after the newest load without it,
# as a check fails since its first failure after its last pass; a run's files are one load.
# check_history is named once: every reference to a view binds its Delta scan again, which
# reads the table's log (the serving build creates this view and catalog.datasets over it).
FAILURES = """
WITH history AS (SELECT * FROM quality.check_history),
latest AS (
    SELECT * FROM history
    QUALIFY row_number() OVER (PARTITION BY dataset, "check" ORDER BY evaluated_at DESC) = 1
),
last_pass AS (
    SELECT dataset, "check", max(evaluated_at) AS at
    FROM history WHERE passed GROUP BY ALL
),
since AS (
    SELECT h.dataset, h."check", min(h.evaluated_at) AS failing_since
    FROM history h LEFT JOIN last_pass p USING (dataset, "check")
    WHERE NOT h.passed AND (p.at IS NULL OR h.evaluated_at > p.at)
    GROUP BY ALL
),
loads AS MATERIALIZED (
    SELECT dataset, batch_id, dagster_run_id, finished_at,
           coalesce(dagster_run_id, batch_id) AS load_id,
           max(finished_at) OVER (PARTITION BY dataset, coalesce(dagster_run_id, batch_id))
             AS load_at
    FROM quality.runs
    WHERE status = 'loaded'
),
latest_load AS (
    SELECT * FROM loads
    QUALIFY row_number() OVER (PARTITION BY dataset ORDER BY finished_at DESC) = 1
),
-- Files waiting together load in one run: the latest load is all of that run's batches.
latest_batch AS (
    SELECT DISTINCT r.dataset, r.batch_id
    FROM loads r JOIN latest_load l USING (dataset)
    WHERE r.batch_id = l.batch_id OR r.dagster_run_id = l.dagster_run_id
),
-- Every batch's contract failures, read once; counts and examples for the latest load only.
quarantined AS MATERIALIZED (
    SELECT q.dataset, q.batch_id, q."check", q."column", l.batch_id IS NOT NULL AS latest,
           count(DISTINCT (q.sheet, q.source_row)) FILTER (WHERE l.batch_id IS NOT NULL)
             AS "rows",
           list(DISTINCT q.value ORDER BY q.value) FILTER (WHERE l.batch_id IS NOT NULL)
             AS examples,
           min(q.quarantined_at) AS first_at, max(q.quarantined_at) AS last_at
    FROM quality.quarantine q LEFT JOIN latest_batch l USING (dataset, batch_id)
    GROUP BY q.dataset, q.batch_id, q."check", q."column", l.batch_id
),
failing_loads AS (
    SELECT DISTINCT q.dataset, q."check", q."column", d.load_id
    FROM quarantined q JOIN loads d USING (dataset, batch_id)
),
-- Per failure of the latest load: when the newest load without it finished.
clean AS (
    SELECT k.dataset, k."check", k."column", max(d.load_at) AS at
    FROM (SELECT DISTINCT dataset, "check", "column" FROM quarantined WHERE latest) k
    JOIN loads d USING (dataset)
    WHERE NOT EXISTS (
        SELECT 1 FROM failing_loads f
        WHERE f.dataset = k.dataset AND f."check" = k."check"
          AND f."column" IS NOT DISTINCT FROM k."column" AND f.load_id = d.load_id
    )
    GROUP BY ALL
),
contract_since AS (
    SELECT q.dataset, q."check", q."column", min(q.first_at) AS failing_since
    FROM quarantined q
    JOIN loads d USING (dataset, batch_id)
    LEFT JOIN clean c
      ON c.dataset = q.dataset AND c."check" = q."check"
     AND c."column" IS NOT DISTINCT FROM q."column"
    WHERE c.at IS NULL OR d.load_at > c.at
    GROUP BY ALL
)
SELECT l.dataset, l."check", NULL::VARCHAR AS "column", l.severity, l.blocking,
       l.rows_affected AS "rows", NULL::VARCHAR[] AS examples, l.details,
       s.failing_since, l.evaluated_at AS last_evaluated_at, l.batch_id
FROM latest l JOIN since s USING (dataset, "check")
WHERE NOT l.passed
UNION ALL BY NAME
SELECT q.dataset, 'contract: ' || q."check" AS "check", q."column", 'WARN' AS severity,
       false AS blocking, q."rows", q.examples[1:5] AS examples,
       'rows in quality.quarantine' AS details,
       s.failing_since, q.last_at AS last_evaluated_at, q.batch_id
FROM quarantined q
LEFT JOIN contract_since s
  ON s.dataset = q.dataset AND s."check" = q."check" AND s."column" IS NOT DISTINCT FROM q."column"
WHERE q.latest
"""

FRESHNESS = """
SELECT s.dataset, s.freshness_hours AS expected_within_hours, l.last_loaded_at,
       round(epoch(now() - l.last_loaded_at) / 3600, 1) AS age_hours,
       s.freshness_hours IS NOT NULL
         AND (l.last_loaded_at IS NULL
              OR epoch(now() - l.last_loaded_at) / 3600 > s.freshness_hours) AS stale
FROM catalog.dataset_specs s
LEFT JOIN (SELECT dataset, max(finished_at) AS last_loaded_at
           FROM quality.runs WHERE status = 'loaded' GROUP BY ALL) l USING (dataset)
WHERE s.layer = 'silver'
"""

# Score 0-100 for silver datasets: the valid share of the latest load, minus 25 while a
# blocking check fails, 5 per failing warning check (at most 20), and 20 when stale. A load
# of no rows (a month without sick leave) had nothing fail. A dataset with no run recorded
# has no score (null: unknown, not the worst); one whose every delivery was rejected has
# had 0 rows valid and a failing blocking check, so it scores 0.
DATASETS = """
WITH attempted AS (SELECT DISTINCT dataset FROM quality.runs),
last_load AS (
    SELECT dataset, finished_at AS last_loaded_at, rows_in, rows_valid, rows_quarantined
    FROM quality.runs WHERE status = 'loaded'
    QUALIFY row_number() OVER (PARTITION BY dataset ORDER BY finished_at DESC) = 1
),
failing AS (
    SELECT dataset,
           count(*) FILTER (WHERE blocking) AS blocking_failures,
           count(*) FILTER (WHERE NOT blocking) AS warnings
    FROM quality.failures WHERE "check" NOT LIKE 'contract: %' GROUP BY ALL
)
SELECT s.*, l.last_loaded_at, l.rows_in, l.rows_valid, l.rows_quarantined, f.stale,
       coalesce(x.blocking_failures, 0) AS blocking_failures,
       coalesce(x.warnings, 0) AS failing_warnings,
       CASE WHEN s.layer = 'silver' AND a.dataset IS NOT NULL THEN greatest(0, round(
           100.0 * CASE WHEN l.rows_in = 0 THEN 1 ELSE coalesce(l.rows_valid / l.rows_in, 0) END
           - 25 * (coalesce(x.blocking_failures, 0) > 0)::INT
           - least(20, 5 * coalesce(x.warnings, 0))
           - 20 * coalesce(f.stale, false)::INT))::INT END AS quality_score
FROM catalog.dataset_specs s
LEFT JOIN last_load l USING (dataset)
LEFT JOIN quality.freshness f USING (dataset)
LEFT JOIN failing x USING (dataset)
LEFT JOIN attempted a USING (dataset)
"""

EMPTY_RUNS = """
SELECT NULL::VARCHAR AS dataset, NULL::VARCHAR AS batch_id, NULL::VARCHAR AS source_file,
       NULL::VARCHAR AS status, NULL::BIGINT AS rows_in, NULL::BIGINT AS rows_valid,
       NULL::BIGINT AS rows_quarantined, NULL::VARCHAR AS failed_checks,
       NULL::VARCHAR AS extra_columns, NULL::BIGINT AS silver_version,
       NULL::TIMESTAMPTZ AS started_at, NULL::TIMESTAMPTZ AS finished_at,
       NULL::VARCHAR AS message, NULL::VARCHAR AS dagster_run_id,
       NULL::VARCHAR AS drift_decision
WHERE false
"""

EMPTY_DELETIONS = """
SELECT NULL::VARCHAR AS dataset, NULL::VARCHAR AS batch_id, NULL::VARCHAR AS key,
       NULL::TIMESTAMPTZ AS deleted_at
WHERE false
"""

# quality.erasures before the first `kommunelake erase` (lake/erasure.py writes the table).
EMPTY_ERASURES = """
SELECT NULL::VARCHAR AS erasure_id, NULL::TIMESTAMPTZ AS erased_at, NULL::VARCHAR AS erased_by,
       NULL::BOOLEAN AS subject_found, NULL::BIGINT AS rows_removed,
       NULL::VARCHAR AS rows_removed_per_table, NULL::BIGINT AS landing_files
WHERE false
"""

EMPTY_CHECK_HISTORY = """
SELECT NULL::VARCHAR AS dataset, NULL::VARCHAR AS "check", NULL::BOOLEAN AS passed,
       NULL::VARCHAR AS severity, NULL::BOOLEAN AS blocking, NULL::BIGINT AS rows_affected,
       NULL::VARCHAR AS details, NULL::VARCHAR AS batch_id,
       NULL::TIMESTAMPTZ AS evaluated_at, NULL::VARCHAR AS dagster_run_id
WHERE false
"""

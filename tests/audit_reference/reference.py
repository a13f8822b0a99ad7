#!/usr/bin/env python3
"""Independent reference for `gk-regler audit` (docs/audit.md), computed with statsmodels.

Reads the SQLite database that `gk-regler import` wrote (evaluations, flags,
rule_errors, outcomes, rule_sets), builds the audit units itself from docs/audit.md —
no Rust code is called — and writes every number the audit reports, in a flat list,
to `expected.json` beside this script. `tests/it/audit_reference.rs` runs the real
binary on the same cohort and compares its JSON report with this file.

The statistics come from statsmodels, not from formulas written here:

* shares, differences and the two-sided z-test with the pooled standard error:
  `statsmodels.stats.proportion.proportions_ztest` (its default, `prop_var=False`,
  pools the two groups under the null);
* the 95 % interval of the difference with the unpooled (Wald) standard error:
  `statsmodels.stats.proportion.confint_proportions_2indep(method="wald")`;
* the adjusted estimate: `statsmodels.formula.api.ols(...).fit(cov_type="HC1",
  use_t=True)` — HC1 robust standard errors, t-based p-values and intervals on
  n − rank(X) degrees of freedom (Stata's `regress, robust`). Categorical controls
  are coded by patsy's treatment coding (reference = first level alphabetically,
  which differs from the Rust order on purpose: the flag's coefficient must not
  depend on it). Rank-deficient designs are fitted by statsmodels' pseudo-inverse;
  the flag's coefficient is reported only when the flag column is not a linear
  combination of the intercept and the controls.

Usage: see README.md in this folder.
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import sys
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import patsy
import scipy
import statsmodels
import statsmodels.formula.api as smf
import yaml
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportions_ztest,
)

ANY_FLAG = "nagon_flagga"
GROUPS = ("female", "male", "all")
MEASURES = ("left_insurance", "work_or_studies", "worsened_health")
WORK_OR_STUDIES = {"work_unsupported", "work_supported", "regular_studies"}
WORSENED_HEALTH = {"health_worsened_related", "health_worsened_unrelated"}
ALPHA = 0.05

FLAGGED, CLEAR, FAILED = "flagged", "clear", "failed"


# ----------------------------------------------------------------------------------
# Reading the database
# ----------------------------------------------------------------------------------


@dataclass
class Check:
    id: int
    stage: str
    checked_on: str
    first_meeting_on: str | None
    profile: dict
    flagged: set = field(default_factory=set)
    failed: set = field(default_factory=set)
    # The rule ids of the rule set that made the check.
    in_set: set = field(default_factory=set)


@dataclass
class Outcome:
    ended_on: str
    left_insurance: bool
    work_or_studies: bool
    worsened_health: bool


def read_database(path: Path):
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    flags = defaultdict(set)
    for evaluation_id, rule_id in conn.execute("SELECT evaluation_id, rule_id FROM flags"):
        flags[evaluation_id].add(rule_id)
    errors = defaultdict(set)
    for evaluation_id, rule_id in conn.execute(
        "SELECT evaluation_id, rule_id FROM rule_errors"
    ):
        errors[evaluation_id].add(rule_id)

    rules_of_set = {
        content_hash: {r["id"] for r in yaml.safe_load(json.loads(sources)[0]["text"])["rules"]}
        for content_hash, sources in conn.execute(
            "SELECT content_hash, sources_json FROM rule_sets"
        )
    }
    cases: dict[str, list[Check]] = defaultdict(list)
    for eid, case, stage, checked_on, profile_json, rule_set_hash in conn.execute(
        "SELECT id, case_pseudonym, stage, checked_on, profile_json, rule_set_hash"
        " FROM evaluations"
    ):
        profile = json.loads(profile_json)
        gk = profile.get("gk") or {}
        cases[case].append(
            Check(
                id=eid,
                stage=stage,
                checked_on=checked_on,
                first_meeting_on=gk.get("first_meeting_on"),
                profile=profile,
                flagged=flags.get(eid, set()),
                failed=errors.get(eid, set()),
                in_set=rules_of_set.get(rule_set_hash, set()),
            )
        )
    # Oldest first; checks on the same day in the order they were stored.
    for checks in cases.values():
        checks.sort(key=lambda c: (c.checked_on, c.id))

    outcomes = {}
    for case, ended_on, outcome, reasons_json in conn.execute(
        "SELECT case_pseudonym, ended_on, outcome, reasons_json FROM outcomes"
    ):
        reasons = set(json.loads(reasons_json))
        outcomes[case] = Outcome(
            ended_on=ended_on,
            left_insurance=outcome == "left_insurance",
            work_or_studies=bool(reasons & WORK_OR_STUDIES),
            worsened_health=bool(reasons & WORSENED_HEALTH),
        )

    # The rules reported: those of the rule sets' manifests, and any rule id found in
    # stored flags or errors. (The audit reports the active rules; the test imports
    # with the same rules it audits with.)
    rules = []
    for (sources_json,) in conn.execute("SELECT sources_json FROM rule_sets"):
        manifest = yaml.safe_load(json.loads(sources_json)[0]["text"])
        rules.extend(r["id"] for r in manifest["rules"])
    for (rule_id,) in conn.execute(
        "SELECT rule_id FROM flags UNION SELECT rule_id FROM rule_errors"
    ):
        rules.append(rule_id)
    rules = list(dict.fromkeys(rules))
    rule_sets = [
        {"name": name, "version": version, "content_hash": content_hash}
        for name, version, content_hash in conn.execute(
            "SELECT name, version, content_hash FROM rule_sets ORDER BY content_hash"
        )
    ]
    conn.close()
    return cases, outcomes, rules, rule_sets


# ----------------------------------------------------------------------------------
# Units (docs/audit.md)
# ----------------------------------------------------------------------------------


def status_at(check: Check, rule: str) -> str:
    if rule == ANY_FLAG:
        if check.flagged:
            return FLAGGED
        if check.failed:
            return FAILED
        return CLEAR
    if rule in check.failed:
        return FAILED
    if rule in check.flagged:
        return FLAGGED
    return CLEAR


def flagged_at(check: Check, rule: str) -> bool:
    return bool(check.flagged) if rule == ANY_FLAG else rule in check.flagged


@dataclass
class Unit:
    sex: str | None
    covariates: dict
    outcome: Outcome
    # rule -> (status at the last check before GK, flagged at any check before GK)
    rules: dict


def covariates_of(profile: dict) -> dict:
    person = profile.get("person") or {}
    diagnosis = profile.get("main_diagnosis")
    if diagnosis is None:
        group = None
    else:
        first = diagnosis[:1].upper()
        group = {"F": "psychiatric", "M": "musculoskeletal", "S": "injury", "T": "injury"}.get(
            first, "other"
        )
    return {
        "sex": person.get("sex"),
        "age": person.get("age"),
        "diagnosis": group,
        "education": person.get("education"),
        "marital_status": person.get("marital_status"),
        "children_0_17": person.get("children_0_17"),
        "born_abroad": person.get("born_abroad"),
        "returner_ever": person.get("returner_ever"),
        "sgi": person.get("sgi"),
    }


def in_period(date: str, period) -> bool:
    start, end = period
    return (start is None or start <= date) and (end is None or date <= end)


def build_units(cases, outcomes, rules, period):
    """One unit per case with an outcome in the period and a check before GK.

    A check before GK: stage `before_gk`, made on or before the first GK meeting when
    that date is known. When the checks of a case give different dates (a planned
    meeting moved), the newest check that gives one is taken to know best.
    """
    units, without_check = [], 0
    for case, checks in cases.items():
        outcome = outcomes.get(case)
        if outcome is None or not in_period(outcome.ended_on, period):
            continue
        gk_date = next(
            (c.first_meeting_on for c in reversed(checks) if c.first_meeting_on), None
        )
        before = [
            c
            for c in checks
            if c.stage == "before_gk" and (gk_date is None or c.checked_on <= gk_date)
        ]
        if not before:
            without_check += 1
            continue
        last = before[-1]
        covariates = covariates_of(last.profile)
        units.append(
            Unit(
                sex=covariates["sex"],
                covariates=covariates,
                outcome=outcome,
                rules={
                    rule: (status_at(last, rule), any(flagged_at(c, rule) for c in before))
                    for rule in rules + [ANY_FLAG]
                },
            )
        )
    # Outcomes whose case has no stored check at all are not units either.
    for case, outcome in outcomes.items():
        if case not in cases and in_period(outcome.ended_on, period):
            without_check += 1
    return units, without_check


def in_group(unit: Unit, group: str) -> bool:
    return group == "all" or unit.sex == group


# ----------------------------------------------------------------------------------
# Statistics (statsmodels)
# ----------------------------------------------------------------------------------


class Rows:
    """The flat list written to expected.json."""

    def __init__(self):
        self.rows = []

    def add(self, rule_id, group, section, measure, fld, value, status=None):
        if status is None:
            status = "value" if value is not None else "undefined"
        if value is not None:
            value = float(value) if isinstance(value, (float, np.floating)) else int(value)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"non-finite {rule_id} {group} {section} {measure} {fld}")
        self.rows.append(
            {
                "rule_id": rule_id,
                "group": group,
                "section": section,
                "measure": measure,
                "field": fld,
                "status": status,
                "value": value,
            }
        )


def measure_of(outcome: Outcome, measure: str) -> bool:
    return getattr(outcome, measure)


def compare(rows: Rows, rule, group, section, a, b, min_cell):
    n_a, n_b = len(a), len(b)
    rows.add(rule, group, section, None, "n_a", n_a)
    rows.add(rule, group, section, None, "n_b", n_b)
    for measure in MEASURES:
        x_a = sum(measure_of(u.outcome, measure) for u in a)
        x_b = sum(measure_of(u.outcome, measure) for u in b)
        for fld, x, n in (("share_a_pct", x_a, n_a), ("share_b_pct", x_b, n_b)):
            if n >= min_cell:
                rows.add(rule, group, section, measure, fld, 100.0 * x / n)
            else:
                rows.add(rule, group, section, measure, fld, None, "suppressed")
        test_fields = ("diff_pp", "ci_low_pp", "ci_high_pp", "p_value")
        if n_a < min_cell or n_b < min_cell:
            for fld in test_fields:
                rows.add(rule, group, section, measure, fld, None, "suppressed")
            continue
        low, high = confint_proportions_2indep(
            x_a, n_a, x_b, n_b, method="wald", compare="diff", alpha=ALPHA
        )
        diff = x_a / n_a - x_b / n_b
        rows.add(rule, group, section, measure, "diff_pp", 100.0 * diff)
        rows.add(rule, group, section, measure, "ci_low_pp", 100.0 * low)
        rows.add(rule, group, section, measure, "ci_high_pp", 100.0 * high)
        pooled = (x_a + x_b) / (n_a + n_b)
        if pooled in (0.0, 1.0):
            # Everyone has the same outcome: the pooled SE is zero, the test undefined.
            rows.add(rule, group, section, measure, "p_value", None, "undefined")
        else:
            with np.errstate(all="raise"):
                _z, p = proportions_ztest([x_a, x_b], [n_a, n_b], alternative="two-sided")
            rows.add(rule, group, section, measure, "p_value", p)


CONTROLS = (
    "sex",
    "age",
    "diagnosis",
    "education",
    "marital_status",
    "children_0_17",
    "born_abroad",
    "returner_ever",
)


def adjusted(rows: Rows, rule, group, flagged, clear, min_cell):
    """Leaving the insurance on the flag and the controls of SFR 2018:11 tabell 20."""
    section = "adjusted"
    with_sex = group == "all"
    needed = [c for c in CONTROLS if with_sex or c != "sex"]
    sample = [
        (u, 1) for u in flagged if all(u.covariates[c] is not None for c in needed)
    ] + [(u, 0) for u in clear if all(u.covariates[c] is not None for c in needed)]
    n_flagged = sum(f for _, f in sample)
    n_clear = len(sample) - n_flagged
    rows.add(rule, group, section, None, "observations", len(sample))
    rows.add(rule, group, section, None, "n_flagged", n_flagged)
    rows.add(rule, group, section, None, "n_not_flagged", n_clear)
    estimate_fields = ("coefficient", "robust_se", "p_value", "ci_low", "ci_high", "r_squared")
    if n_flagged < min_cell or n_clear < min_cell:
        for fld in estimate_fields:
            rows.add(rule, group, section, None, fld, None, "suppressed")
        return

    with_sgi = all(u.covariates["sgi"] is not None for u, _ in sample)
    data = pd.DataFrame(
        {
            "left": [float(u.outcome.left_insurance) for u, _ in sample],
            "flag": [float(f) for _, f in sample],
            "female": [float(u.covariates["sex"] == "female") for u, _ in sample],
            "age": [float(u.covariates["age"]) for u, _ in sample],
            "diagnosis": [u.covariates["diagnosis"] for u, _ in sample],
            "education": [u.covariates["education"] for u, _ in sample],
            "marital_status": [u.covariates["marital_status"] for u, _ in sample],
            "children": [float(u.covariates["children_0_17"]) for u, _ in sample],
            "born_abroad": [float(u.covariates["born_abroad"]) for u, _ in sample],
            "returner": [float(u.covariates["returner_ever"]) for u, _ in sample],
            "sgi": [
                float(u.covariates["sgi"]) / 100_000 if with_sgi else 0.0 for u, _ in sample
            ],
        }
    )
    terms = [
        "age",
        "C(diagnosis)",
        "C(education)",
        "C(marital_status)",
        "children",
        "born_abroad",
        "returner",
    ]
    if with_sex:
        terms.insert(0, "female")
    if with_sgi:
        terms.append("sgi")
    controls_only = smf.ols("left ~ " + " + ".join(terms), data=data)
    model = smf.ols("left ~ " + " + ".join(terms) + " + flag", data=data)
    rank_controls = np.linalg.matrix_rank(controls_only.exog)
    rank_full = np.linalg.matrix_rank(model.exog)
    if rank_full == rank_controls:
        # The flag is a linear combination of the controls: no estimate.
        for fld in estimate_fields:
            rows.add(rule, group, section, None, fld, None, "undefined")
        return
    fit = model.fit(cov_type="HC1", use_t=True)
    assert fit.df_resid == len(sample) - rank_full
    se = fit.bse["flag"]
    rows.add(rule, group, section, None, "coefficient", fit.params["flag"])
    rows.add(rule, group, section, None, "robust_se", se)
    low, high = fit.conf_int(alpha=ALPHA).loc["flag"]
    if se > 1e-12 * max(abs(fit.params["flag"]), 1.0):
        rows.add(rule, group, section, None, "p_value", fit.pvalues["flag"])
        rows.add(rule, group, section, None, "ci_low", low)
        rows.add(rule, group, section, None, "ci_high", high)
    else:
        for fld in ("p_value", "ci_low", "ci_high"):
            rows.add(rule, group, section, None, fld, None, "undefined")
    centred = ((data["left"] - data["left"].mean()) ** 2).sum()
    rows.add(
        rule, group, section, None, "r_squared", fit.rsquared if centred > 0 else None
    )


# ----------------------------------------------------------------------------------
# Alert burden: checks and flags per month of checked_on, by sex
# ----------------------------------------------------------------------------------


def burden(rows: Rows, cases, rules, period):
    checks = [c for cs in cases.values() for c in cs if in_period(c.checked_on, period)]

    def counts(selected):
        sexes = [(c.profile.get("person") or {}).get("sex") for c in selected]
        return {
            "female": sum(s == "female" for s in sexes),
            "male": sum(s == "male" for s in sexes),
            "all": len(sexes),
        }

    months = sorted({c.checked_on[:7] for c in checks})
    if months:
        (y, m), (y_end, m_end) = (tuple(map(int, months[0].split("-"))),
                                  tuple(map(int, months[-1].split("-"))))
        months = []
        while (y, m) <= (y_end, m_end):
            months.append(f"{y:04d}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)

    for group, n in counts(checks).items():
        rows.add(None, group, "checks_in_period", None, "count", n)
    for month in months:
        in_month = [c for c in checks if c.checked_on[:7] == month]
        for group, n in counts(in_month).items():
            rows.add(None, group, "checks_per_month", month, "count", n)
    for rule in rules + [ANY_FLAG]:
        flagged = [c for c in checks if flagged_at(c, rule)]
        for group, n in counts(flagged).items():
            rows.add(rule, group, "flagged_checks", None, "count", n)
        for month in months:
            in_month = [c for c in flagged if c.checked_on[:7] == month]
            for group, n in counts(in_month).items():
                rows.add(rule, group, "flags_per_month", month, "count", n)
        # The checks whose rule set had the rule ("any flag": every check).
        with_rule = [c for c in checks if rule == ANY_FLAG or rule in c.in_set]
        rows.add(rule, None, "checks_with_rule", None, "count", len(with_rule))
        if rule == ANY_FLAG:
            errors = sum(bool(c.failed) for c in checks)
        else:
            errors = sum(rule in c.failed for c in checks)
        rows.add(rule, None, "rule_errors", None, "count", errors)


# ----------------------------------------------------------------------------------


def dump(document: dict) -> str:
    """JSON with one row per line, so a change in the numbers reads well in a diff."""
    head = {k: v for k, v in document.items() if k != "rows"}
    text = json.dumps(head, indent=1, ensure_ascii=False)[:-2]
    rows = ",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in document["rows"])
    return text + ',\n "rows": [\n' + rows + "\n ]\n}\n"


def main(argv=None):
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database", type=Path, help="SQLite file written by gk-regler import")
    parser.add_argument("--out", type=Path, default=here / "expected.json")
    parser.add_argument("--min-cell", type=int, default=5)
    parser.add_argument("--from", dest="start", default=None, help="YYYY-MM-DD (outcome date)")
    parser.add_argument("--to", dest="end", default=None, help="YYYY-MM-DD (outcome date)")
    args = parser.parse_args(argv)
    period = (args.start, args.end)

    cases, outcomes, rules, rule_sets = read_database(args.database)
    units, without_check = build_units(cases, outcomes, rules, period)

    rows = Rows()
    for group in GROUPS:
        rows.add(None, group, "units", None, "count", sum(in_group(u, group) for u in units))
    rows.add(None, None, "cases_without_check_before_gk", None, "count", without_check)

    for rule in rules + [ANY_FLAG]:
        for group in GROUPS:
            members = [u for u in units if in_group(u, group)]
            flagged = [u for u in members if u.rules[rule][0] == FLAGGED]
            clear = [u for u in members if u.rules[rule][0] == CLEAR]
            resolved = [u for u in clear if u.rules[rule][1]]
            rows.add(
                rule, group, "unknown_at_last_check", None, "count",
                len(members) - len(flagged) - len(clear),
            )
            compare(rows, rule, group, "flagged_vs_not_flagged", flagged, clear, args.min_cell)
            compare(
                rows, rule, group, "resolved_vs_still_flagged", resolved, flagged, args.min_cell
            )
            adjusted(rows, rule, group, flagged, clear, args.min_cell)

    burden(rows, cases, rules, period)

    document = {
        "about": (
            "Expected numbers of `gk-regler audit --format json` on the development cohort "
            "(examples/cohort-2018), computed independently by reference.py with "
            "statsmodels. See README.md in this folder."
        ),
        "generated_with": {
            "python": sys.version.split()[0],
            "statsmodels": statsmodels.__version__,
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "patsy": patsy.__version__,
            "pyyaml": yaml.__version__,
        },
        "min_cell": args.min_cell,
        "period": {"from": args.start, "to": args.end},
        "rule_sets": rule_sets,
        "rules": rules + [ANY_FLAG],
        "rows": rows.rows,
    }
    args.out.write_text(dump(document))
    counted = defaultdict(int)
    for row in rows.rows:
        counted[row["status"]] += 1
    print(
        f"{len(units)} units, {len(rows.rows)} rows "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(counted.items()))}) -> {args.out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    warnings.simplefilter("error", RuntimeWarning)
    main()

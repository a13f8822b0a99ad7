//! "Uppföljning": the audit of [`crate::audit`] (flags against outcomes, docs/audit.md)
//! for a period the analyst chooses (optionally compared with a second period, and with
//! test checks when asked), with its charts, and the same report as JSON, CSV and Excel
//! downloads.
//!
//! The report is computed by [`app::history::audit`] and drawn by
//! [`crate::audit::html::render_audit`], exactly as the CLI does; this page only puts
//! that page's body inside the site's layout ([`embed`]). The period is not personal
//! data, so it travels in the URL (`?fran=…&till=…`) and the downloads can link to it.
//! Every audit is written to the access log by the use case: it reads stored profiles.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{AUDIT_PAGE, Layout, SharedState, Viewer, failure, refusal, render};
use crate::app::history::AuditFormat;
use crate::app::{self, AppError};
use crate::audit::{Options, Period};
use crate::profile::Date;

/// The period as the form sends it (`YYYY-MM-DD`; empty or absent is open), the period
/// to compare with (both empty: none) and whether test checks are included (the
/// checkbox sends `include_test=true`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PeriodQuery {
    #[serde(default)]
    fran: String,
    #[serde(default)]
    till: String,
    #[serde(default)]
    compare_from: String,
    #[serde(default)]
    compare_to: String,
    #[serde(default)]
    include_test: String,
}

/// A date of the period form, typed as on the check page (`2024-1-31` and `20240131`
/// too), or what is wrong with it in Swedish.
fn period_date(text: &str) -> Result<Date, String> {
    const HOW: &str = "Ange ett datum som ÅÅÅÅ-MM-DD, till exempel 2024-01-31 (2024-1-31 och 20240131 går också).";
    Date::parse(&super::form::normalise_date(text)).map_err(|why| {
        if why == Date::NOT_A_DATE {
            HOW.to_owned()
        } else {
            format!("Datumet finns inte i kalendern. {HOW}")
        }
    })
}

impl PeriodQuery {
    /// The period, or a Swedish message per form field (`fran`, `till`).
    fn period(&self) -> Result<Period, BTreeMap<&'static str, String>> {
        let mut errors = BTreeMap::new();
        let mut date = |name: &'static str, text: &str| {
            let text = text.trim();
            if text.is_empty() {
                return None;
            }
            match period_date(text) {
                Ok(date) => Some(date),
                Err(why) => {
                    errors.insert(name, why);
                    None
                }
            }
        };
        let from = date("fran", &self.fran);
        let to = date("till", &self.till);
        // The comparison's dates are checked here with the others ([`Self::compare`]
        // reads them).
        date("compare_from", &self.compare_from);
        date("compare_to", &self.compare_to);
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut period = Period::new(from, to).map_err(|_| {
            BTreeMap::from([(
                "till",
                "Slutdatumet är före startdatumet. Välj ett senare slutdatum.".to_owned(),
            )])
        })?;
        period.include_test = self.includes_test();
        Ok(period)
    }

    fn includes_test(&self) -> bool {
        self.include_test.trim() == "true"
    }

    /// The period to compare with, when one is given; a Swedish message per form field.
    fn compare(&self) -> Result<Option<Period>, BTreeMap<&'static str, String>> {
        let (from, to) = (self.compare_from.trim(), self.compare_to.trim());
        if from.is_empty() && to.is_empty() {
            return Ok(None);
        }
        let date = |text: &str| (!text.is_empty()).then(|| period_date(text).ok()).flatten();
        Period::new(date(from), date(to)).map(Some).map_err(|_| {
            BTreeMap::from([(
                "compare_to",
                "Jämförelseperiodens slutdatum är före dess startdatum. Välj ett senare slutdatum."
                    .to_owned(),
            )])
        })
    }

    /// The audit's options for this query: `period` (checked by [`Self::period`] first)
    /// and the comparison, at the page's threshold.
    fn options(
        &self,
        period: Period,
        min_cell: usize,
    ) -> Result<Options, BTreeMap<&'static str, String>> {
        Ok(Options {
            period,
            min_cell,
            compare: self.compare()?,
        })
    }

    /// The query string of this period for links, e.g. `?fran=2024-01-01`.
    fn query_string(&self) -> String {
        let mut parts = Vec::new();
        for (name, value) in [
            ("fran", self.fran.trim()),
            ("till", self.till.trim()),
            ("compare_from", self.compare_from.trim()),
            ("compare_to", self.compare_to.trim()),
        ] {
            // Only well-formed dates reach a link (checked by `period` first).
            if !value.is_empty() {
                parts.push(format!("{name}={value}"));
            }
        }
        if self.includes_test() {
            parts.push("include_test=true".to_owned());
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

#[derive(Serialize)]
struct AuditPage {
    #[serde(flatten)]
    layout: Layout,
    from: String,
    to: String,
    compare_from: String,
    compare_to: String,
    include_test: bool,
    errors: BTreeMap<&'static str, String>,
    min_cell: usize,
    /// The audit's own HTML (its body), already escaped by its template.
    report: Option<String>,
    json_href: String,
    csv_href: String,
    xlsx_href: String,
}

/// The page's threshold: the default, or the configured floor when that is higher.
fn min_cell_of(state: &SharedState) -> usize {
    crate::audit::min_cell_within(None, state.audit_min_cell_floor)
        .unwrap_or(crate::audit::DEFAULT_MIN_CELL)
}

/// Computes the audit of `options` for `viewer` and writes it as `format`, off the async
/// workers; the use case writes the access log.
async fn audit_of(
    state: &SharedState,
    viewer: &Viewer,
    options: Options,
    format: AuditFormat,
) -> Result<String, AppError> {
    let rules = app::rules::active(state, viewer);
    let rendered =
        app::history::audit_rendered(&state.store, viewer, &rules, options, format).await?;
    Ok(rendered.text)
}

/// The period asked for, or a Swedish message for an address the page cannot read (a
/// field given twice, text that is not UTF-8): never taken as no period, which would be
/// the audit of all time.
fn read_query(query: Result<Query<PeriodQuery>, QueryRejection>) -> Result<PeriodQuery, String> {
    let unreadable = || {
        "Adressen kunde inte läsas: ett fält är okänt, står mer än en gång eller har tecken \
         som inte går att läsa. Välj perioden i formuläret igen."
            .to_owned()
    };
    let query = query.map(|Query(query)| query).map_err(|_| unreadable())?;
    // The checkbox sends `true`; anything else would silently leave test checks out.
    if !matches!(query.include_test.trim(), "" | "true") {
        return Err(unreadable());
    }
    Ok(query)
}

/// The page: the period form and, for a valid period, the report.
pub(super) async fn page(
    State(state): State<SharedState>,
    viewer: Viewer,
    query: Result<Query<PeriodQuery>, QueryRejection>,
) -> Response {
    if let Some(refused) = refusal(&viewer, &AUDIT_PAGE) {
        return refused;
    }
    let (query, unreadable) = match read_query(query) {
        Ok(query) => (query, None),
        Err(message) => (PeriodQuery::default(), Some(message)),
    };
    let mut page = AuditPage {
        layout: Layout::new("Uppföljning", Some(&viewer), AUDIT_PAGE.path),
        from: query.fran.trim().to_owned(),
        to: query.till.trim().to_owned(),
        compare_from: query.compare_from.trim().to_owned(),
        compare_to: query.compare_to.trim().to_owned(),
        include_test: query.includes_test(),
        errors: BTreeMap::new(),
        min_cell: min_cell_of(&state),
        report: None,
        json_href: format!("/uppfoljning/rapport.json{}", query.query_string()),
        csv_href: format!("/uppfoljning/rapport.csv{}", query.query_string()),
        xlsx_href: format!("/uppfoljning/rapport.xlsx{}", query.query_string()),
    };
    if let Some(message) = unreadable {
        page.errors.insert("adress", message);
        return render(StatusCode::BAD_REQUEST, "audit.html", &page);
    }
    let options = match query
        .period()
        .and_then(|period| query.options(period, min_cell_of(&state)))
    {
        Ok(options) => options,
        Err(errors) => {
            page.errors = errors;
            return render(StatusCode::UNPROCESSABLE_ENTITY, "audit.html", &page);
        }
    };
    let _slot = match state.long_work_slot(&viewer) {
        Ok(slot) => slot,
        Err(err) => return failure(&viewer, &err),
    };
    let html = match audit_of(&state, &viewer, options, AuditFormat::Html).await {
        Ok(html) => html,
        Err(err) => return failure(&viewer, &err),
    };
    // Embedding and the site's template copy the whole report: off the workers too.
    let rendered = app::off_workers(move || match embed(&html) {
        Some(body) => {
            page.report = Some(body);
            Ok(render(StatusCode::OK, "audit.html", &page))
        }
        None => Err(AppError::Report("the audit page has no <body>".into())),
    })
    .await
    .and_then(|page| page);
    match rendered {
        Ok(response) => response,
        Err(err) => failure(&viewer, &err),
    }
}

/// The body of the audit's stand-alone page, made a part of this site's page: its
/// `<main>` becomes a `<div>` (a page has one `main`), its headings move one level
/// down (the site page has its own `h1`), and its `<style>` (in `<head>`) is left out:
/// the site's stylesheet styles the same classes under `.audit-report`.
fn embed(document: &str) -> Option<String> {
    let start = document.find("<body>")? + "<body>".len();
    let end = document.rfind("</body>")?;
    let body = document.get(start..end)?;
    let mut body = body
        .replace("<main>", "<div class=\"audit-main\">")
        .replace("</main>", "</div>");
    for level in (1..=5).rev() {
        body = body
            .replace(&format!("<h{level}"), &format!("<h{}", level + 1))
            .replace(&format!("</h{level}>"), &format!("</h{}>", level + 1));
    }
    Some(body)
}

#[derive(Clone, Copy)]
pub(super) enum Format {
    Json,
    Csv,
    Xlsx,
}

/// The report as a file to download.
async fn download(
    state: SharedState,
    viewer: Viewer,
    query: Result<Query<PeriodQuery>, QueryRejection>,
    format: Format,
) -> Response {
    if let Some(refused) = refusal(&viewer, &AUDIT_PAGE) {
        return refused;
    }
    let query = match read_query(query) {
        Ok(query) => query,
        Err(message) => {
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                message,
            )
                .into_response();
        }
    };
    let options = match query
        .period()
        .and_then(|period| query.options(period, min_cell_of(&state)))
    {
        Ok(options) => options,
        Err(errors) => {
            let message: Vec<String> = errors.into_values().collect();
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                message.join(" "),
            )
                .into_response();
        }
    };
    let (written, content_type, extension) = match format {
        Format::Json => (Some(AuditFormat::Json), "application/json", "json"),
        Format::Csv => (Some(AuditFormat::Csv), "text/csv; charset=utf-8", "csv"),
        Format::Xlsx => (None, crate::audit::xlsx::CONTENT_TYPE, "xlsx"),
    };
    let _slot = match state.long_work_slot(&viewer) {
        Ok(slot) => slot,
        Err(err) => return failure(&viewer, &err),
    };
    let body: Vec<u8> = match written {
        Some(written) => match audit_of(&state, &viewer, options, written).await {
            Ok(text) => text.into_bytes(),
            Err(err) => return failure(&viewer, &err),
        },
        None => {
            let rules = app::rules::active(&state, &viewer);
            match app::history::audit_xlsx(&state.store, &viewer, &rules, options).await {
                Ok((_, bytes)) => bytes,
                Err(err) => return failure(&viewer, &err),
            }
        }
    };
    let name = match (query.fran.trim(), query.till.trim()) {
        ("", "") => format!("uppfoljning.{extension}"),
        (from, "") => format!("uppfoljning-fran-{from}.{extension}"),
        ("", to) => format!("uppfoljning-till-{to}.{extension}"),
        (from, to) => format!("uppfoljning-{from}-{to}.{extension}"),
    };
    let mut response =
        (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response();
    // The name holds only validated dates, so it is a valid header value.
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

pub(super) async fn download_json(
    State(state): State<SharedState>,
    viewer: Viewer,
    query: Result<Query<PeriodQuery>, QueryRejection>,
) -> Response {
    download(state, viewer, query, Format::Json).await
}

pub(super) async fn download_csv(
    State(state): State<SharedState>,
    viewer: Viewer,
    query: Result<Query<PeriodQuery>, QueryRejection>,
) -> Response {
    download(state, viewer, query, Format::Csv).await
}

pub(super) async fn download_xlsx(
    State(state): State<SharedState>,
    viewer: Viewer,
    query: Result<Query<PeriodQuery>, QueryRejection>,
) -> Response {
    download(state, viewer, query, Format::Xlsx).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_page_fits_into_the_site_page() {
        let input = crate::audit::AuditInput {
            rules: vec![crate::audit::RuleInfo {
                id: "r".into(),
                title: "Regel".into(),
            }],
            rule_sets: Vec::new(),
            cases: Vec::new(),
            unreadable_checks: 0,
        };
        let report = crate::audit::audit(&input, &Options::default());
        let html = crate::audit::html::render_audit(&report).expect("renders");
        let body = embed(&html).expect("has a body");
        assert!(!body.contains("<main") && !body.contains("<h1") && !body.contains("<style"));
        assert!(body.contains("<h2"), "{body}");
        assert!(body.contains("class=\"audit-main\""));
    }

    #[test]
    fn a_period_is_checked_field_by_field() {
        let q = |fran: &str, till: &str| PeriodQuery {
            fran: fran.into(),
            till: till.into(),
            ..PeriodQuery::default()
        };
        assert!(q("", "").period().is_ok());
        assert!(q("2024-01-01", "2024-12-31").period().is_ok());
        let errors = q("2024-13-01", "x").period().expect_err("refused");
        assert_eq!(errors.keys().copied().collect::<Vec<_>>(), ["fran", "till"]);
        let errors = q("2024-06-01", "2024-01-01").period().expect_err("refused");
        assert!(errors.contains_key("till"));
        assert_eq!(q(" 2024-01-01 ", "").query_string(), "?fran=2024-01-01");
    }
}

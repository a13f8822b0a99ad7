//! The web pages for people: case officers check a case ("Kontrollera ärende"), policy
//! staff read, try and reload the rules ("Regler"), analysts read the audit
//! ("Uppföljning"). Server-rendered Swedish HTML, one stylesheet, no JavaScript: every
//! function is a plain link or form.
//!
//! | module | what |
//! |---|---|
//! | `mod.rs` | routes, sign-in and sign-out, who may see what, the template environment, security headers |
//! | [`form`] | the case form: every profile field of docs/profile.md, form ↔ profile JSON, errors by field |
//! | `check` | "Kontrollera ärende": validate, evaluate and store the way the API does, earlier checks |
//! | `rules` | "Regler": the active rule set, scripts and tests; dry run and reload for policy |
//! | `audit` | "Uppföljning": the audit report of [`crate::audit`] for a period, downloads |
//! | `users` | "Användare": create, list and revoke tokens (admin) |
//! | [`guard`] | cross-origin refusal, CSRF tokens on every form, the cookies |
//!
//! Sign-in takes one of the service's tokens and starts a server-side session
//! ([`crate::app::accounts`]); the `gk_session` cookie (HttpOnly, SameSite=Strict) holds
//! only its random id. Signing out, revoking the token and the idle time end it.
//! Every action calls the same use case of [`crate::app`] as the API, which checks the
//! role and writes the access log; a page
//! without a valid token sends the browser to sign-in; a role that may not use a page
//! gets a Swedish 403 page.
//!
//! Privacy: case data is only ever sent with POST (never in a URL), pages are sent with
//! `Cache-Control: no-store`, and form contents are never logged.

mod audit;
mod check;
pub mod form;
pub mod guard;
mod responses;
mod rules;
mod try_form;
mod users;

use std::sync::{Arc, LazyLock};

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::Environment;
use minijinja::value::Serde;
use serde::{Deserialize, Serialize};

use crate::app::{App, AppError};
use crate::auth::{Principal, Role};
use crate::ruleset::Severity;

type SharedState = Arc<App>;

/// The cookie of a signed-in browser: a random session id, never the token. With an
/// https public URL it is named with the `__Host-` prefix ([`guard::CookieNames`]).
pub const SESSION_COOKIE: &str = "gk_session";
/// The cookie that ties the sign-in form to the browser that loaded it (login CSRF).
pub const SIGN_IN_COOKIE: &str = "gk_login";
/// The form field that carries the CSRF token on every form that changes something.
pub const CSRF_FIELD: &str = "csrf";

/// Where policy staff upload a candidate rule set.
pub const CANDIDATE_PATH: &str = "/regler/kandidat";
/// The largest body that upload accepts: the archive cap and room for the form around it.
pub const CANDIDATE_MAX_BODY: usize = crate::candidate_archive::MAX_ARCHIVE_BYTES + 64 * 1024;

/// Every web page and action.
pub fn routes(state: SharedState) -> Router<SharedState> {
    Router::new()
        .route("/", get(home))
        .route("/logga-in", get(sign_in_page).post(sign_in))
        .route("/logga-ut", post(sign_out))
        .route("/kontroll", get(check::page).post(check::submit))
        .route("/kontroll/arende", post(check::lookup))
        .route("/kontroll/{id}", get(check::stored))
        .route("/kontroll/{id}/svar", post(responses::answer))
        .route("/regler", get(rules::page))
        .route("/regler/prova", get(try_form::page).post(rules::dry_run))
        .route("/regler/ladda-om", post(rules::reload))
        .route(
            CANDIDATE_PATH,
            post(rules::try_candidate)
                .layer(axum::extract::DefaultBodyLimit::max(CANDIDATE_MAX_BODY)),
        )
        .route("/uppfoljning", get(audit::page))
        .route("/uppfoljning/rapport.json", get(audit::download_json))
        .route("/uppfoljning/rapport.csv", get(audit::download_csv))
        .route("/uppfoljning/rapport.xlsx", get(audit::download_xlsx))
        .route("/anvandare", get(users::page).post(users::create))
        .route("/anvandare/aterkalla", post(users::revoke))
        .route("/static/style.css", get(stylesheet))
        .layer(axum::middleware::from_fn_with_state(
            state,
            guard::check_form_token,
        ))
        .layer(axum::middleware::map_response(security_headers))
}

// ---------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------

/// The templates, compiled once; a test renders each of them.
static TEMPLATES: LazyLock<Result<Environment<'static>, minijinja::Error>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("macros.html", include_str!("templates/macros.html")),
        ("sign_in.html", include_str!("templates/sign_in.html")),
        ("error.html", include_str!("templates/error.html")),
        ("check.html", include_str!("templates/check.html")),
        ("rules.html", include_str!("templates/rules.html")),
        ("audit.html", include_str!("templates/audit.html")),
        ("users.html", include_str!("templates/users.html")),
        ("try_form.html", include_str!("templates/try_form.html")),
    ] {
        env.add_template(name, source)?;
    }
    Ok(env)
});

const STYLESHEET: &str = include_str!("static/style.css");

/// Renders `template` with `context` as an HTML response with `status`.
fn render(status: StatusCode, template: &str, context: &impl Serialize) -> Response {
    let html = match &*TEMPLATES {
        Ok(env) => env
            .get_template(template)
            .and_then(|t| t.render(Serde(context)))
            .map_err(|err| err.to_string()),
        Err(err) => Err(err.to_string()),
    };
    match html {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(err) => {
            // The template's error names the template and line, never the page's data.
            tracing::error!(template, error = %err, "page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "Sidan kunde inte visas på grund av ett internt fel.",
            )
                .into_response()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Who is signed in, and what they may see
// ---------------------------------------------------------------------------------------

/// The signed-in person of a page request, with the session's CSRF token for the
/// page's forms; or a script's `Authorization: Bearer` token. Without either the
/// browser is sent to sign-in (and a stale cookie is cleared).
pub struct Viewer {
    pub principal: Principal,
    pub csrf: String,
    /// The session id from the cookie.
    session_id: String,
}

impl std::ops::Deref for Viewer {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl FromRequestParts<SharedState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(guard::BearerPrincipal(principal)) = parts.extensions.get() {
            return Ok(Self {
                principal: principal.clone(),
                csrf: String::new(),
                session_id: String::new(),
            });
        }
        if let Some(token) = guard::bearer_of(&parts.headers) {
            return match crate::app::accounts::authenticate(&state.store, token).await {
                Ok(Some(principal)) => Ok(Self {
                    principal,
                    csrf: String::new(),
                    session_id: String::new(),
                }),
                Ok(None) => {
                    tracing::warn!(
                        route = guard::route_of(&parts.extensions),
                        "refused: unknown bearer token"
                    );
                    Err(Redirect::to(SIGN_IN).into_response())
                }
                Err(err) => {
                    tracing::warn!(error = %err, "token could not be read");
                    Err(guard::sessions_unavailable())
                }
            };
        }
        if let Some(session) = parts.extensions.get::<guard::Session>() {
            return Ok(Self {
                principal: session.info.principal.clone(),
                csrf: session.info.csrf_token.clone(),
                session_id: session.id.clone(),
            });
        }
        match guard::session_of(state, &parts.headers).await {
            Ok(Some(session)) => Ok(Self {
                principal: session.info.principal,
                csrf: session.info.csrf_token,
                session_id: session.id,
            }),
            Ok(None) => {
                let had_cookie = guard::has_session_cookie(state, &parts.headers);
                if had_cookie {
                    tracing::info!(
                        route = guard::route_of(&parts.extensions),
                        "session over or unknown: sign in again"
                    );
                }
                let mut response = Redirect::to(SIGN_IN).into_response();
                if had_cookie {
                    response
                        .headers_mut()
                        .insert(header::SET_COOKIE, guard::clear_session_cookie(state));
                }
                Err(response)
            }
            Err(err) => {
                tracing::warn!(error = %err, "session could not be read");
                Err(guard::sessions_unavailable())
            }
        }
    }
}

const SIGN_IN: &str = "/logga-in";

/// A page of the site: its path, its menu label and the roles that may open it.
struct PageSpec {
    path: &'static str,
    label: &'static str,
    roles: &'static [Role],
    /// Whether the page reads real people's stored checks, even counted: then no test
    /// token opens it ([`crate::app::history::TEST_TOKENS_READ_NO_HISTORY`]).
    real_history: bool,
}

impl PageSpec {
    /// Whether `viewer` may open this page: by role, and by purpose.
    fn opens_for(&self, viewer: &Principal) -> bool {
        viewer.has_any(self.roles) && !(self.real_history && viewer.is_for_tests())
    }
}

const CHECK_PAGE: PageSpec = PageSpec {
    path: "/kontroll",
    label: "Kontrollera ärende",
    roles: &[Role::Handlaggare],
    real_history: false,
};
/// Every role may read the rules, as every token may `GET /api/v1/rules`.
const RULES_PAGE: PageSpec = PageSpec {
    path: "/regler",
    label: "Regler",
    roles: &[Role::Handlaggare, Role::Policy, Role::Analytiker],
    real_history: false,
};
/// Trying a profile on the rules page: the roles that may dry-run through the API.
const DRY_RUN_TOOL: PageSpec = PageSpec {
    path: "/regler",
    label: "Prova regler",
    roles: crate::app::check::DRY_RUN_ROLES,
    real_history: false,
};
/// Reloading the rules, on the rules page: the roles that may reload through the API.
const RELOAD_TOOL: PageSpec = PageSpec {
    path: "/regler",
    label: "Ladda om regler",
    roles: crate::app::rules::RELOAD_ROLES,
    real_history: false,
};
const AUDIT_PAGE: PageSpec = PageSpec {
    path: "/uppfoljning",
    label: "Uppföljning",
    roles: &[Role::Analytiker],
    real_history: true,
};
const USERS_PAGE: PageSpec = PageSpec {
    path: "/anvandare",
    label: "Användare",
    roles: crate::app::accounts::ADMIN_ROLES,
    real_history: false,
};
const PAGES: [&PageSpec; 4] = [&CHECK_PAGE, &RULES_PAGE, &AUDIT_PAGE, &USERS_PAGE];

/// Where a role starts after signing in: the page of its work.
fn start_page(principal: &Principal) -> &'static str {
    match principal.role {
        Role::Handlaggare | Role::Admin => CHECK_PAGE.path,
        Role::Policy => RULES_PAGE.path,
        Role::Analytiker if AUDIT_PAGE.opens_for(principal) => AUDIT_PAGE.path,
        Role::Analytiker => RULES_PAGE.path,
    }
}

/// What every page's layout shows: who is signed in and the menu.
#[derive(Serialize)]
struct Layout {
    title: &'static str,
    user: Option<UserView>,
    nav: Vec<NavItem>,
    /// The session's CSRF token, put in every form that changes something.
    csrf: Option<String>,
}

#[derive(Serialize)]
struct UserView {
    name: String,
    role: &'static str,
    /// Signed in with a token for test checks.
    test: bool,
}

#[derive(Serialize)]
struct NavItem {
    href: &'static str,
    label: &'static str,
    current: bool,
}

impl Layout {
    fn new(title: &'static str, viewer: Option<&Viewer>, current: &str) -> Self {
        Self {
            title,
            csrf: viewer.map(|v| v.csrf.clone()),
            user: viewer.map(|p| UserView {
                name: p.name.clone(),
                role: p.role.label_sv(),
                test: p.is_for_tests(),
            }),
            nav: viewer
                .map(|p| {
                    PAGES
                        .iter()
                        .filter(|page| page.opens_for(p))
                        .map(|page| NavItem {
                            href: page.path,
                            label: page.label,
                            current: page.path == current,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// The Swedish 403 page when `viewer` may not use `page`; `None` lets them through.
fn refusal(viewer: &Viewer, page: &PageSpec) -> Option<Response> {
    if crate::app::require(viewer, page.roles).is_err() {
        return Some(forbidden(viewer, page));
    }
    (!page.opens_for(viewer)).then(|| {
        failure(
            viewer,
            &AppError::NotForTests(crate::app::history::TEST_TOKENS_READ_NO_HISTORY),
        )
    })
}

#[derive(Serialize)]
struct ErrorPage {
    #[serde(flatten)]
    layout: Layout,
    heading: &'static str,
    message: String,
    /// A link on from the page, with its text: where to try again.
    link: Option<(String, &'static str)>,
}

fn forbidden(viewer: &Viewer, page: &PageSpec) -> Response {
    let allowed: Vec<&str> = page.roles.iter().map(|r| r.label_sv()).collect();
    render(
        StatusCode::FORBIDDEN,
        "error.html",
        &ErrorPage {
            layout: Layout::new("Behörighet saknas", Some(viewer), ""),
            heading: "Du har inte behörighet till den här sidan",
            message: format!(
                "{} är till för rollen {} (och administratörer). Du är inloggad som {}. \
                 Be en administratör om en annan roll om du behöver det i ditt arbete.",
                page.label,
                allowed.join(", "),
                viewer.role.label_sv(),
            ),
            link: None,
        },
    )
}

/// The page for an error the person cannot fix (the database is down, a bug).
fn failure(viewer: &Viewer, err: &AppError) -> Response {
    let busy;
    let (status, message) = match err {
        AppError::Store(store) if store.is_unavailable() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Databasen tar inte emot uppgifter just nu. Inget sparades. Försök igen om en stund.",
        ),
        AppError::TooMuchAtOnce(at_once) => {
            busy = format!(
                "Du har redan {at_once} uppföljningar eller prov som körs. Vänta tills de är klara och försök sedan igen."
            );
            (StatusCode::TOO_MANY_REQUESTS, busy.as_str())
        }
        // What a test token may not do, and why.
        AppError::NotForTests(why) => (StatusCode::FORBIDDEN, *why),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Något gick fel i tjänsten. Inget av det du fyllde i har loggats. Försök igen; \
             hör av dig till förvaltningen om felet kvarstår.",
        ),
    };
    // Logs the cause (never the form) inside the request's span.
    match err {
        AppError::Store(store) if store.is_unavailable() => {
            tracing::warn!(error = %crate::app::error_chain(store), "store unavailable")
        }
        AppError::TooMuchAtOnce(_) => {}
        // Logged where it was refused.
        AppError::NotForTests(_) => {}
        cause => {
            tracing::error!(error = %crate::app::error_chain(cause), "web page failed")
        }
    }
    let (title, heading) = if status == StatusCode::FORBIDDEN {
        (
            "Behörighet saknas",
            "Det här kan en token för testkontroller inte göra",
        )
    } else {
        ("Fel", "Det gick inte att slutföra")
    };
    render(
        status,
        "error.html",
        &ErrorPage {
            layout: Layout::new(title, Some(viewer), ""),
            heading,
            message: message.to_owned(),
            link: None,
        },
    )
}

// ---------------------------------------------------------------------------------------
// Start, sign-in, sign-out, stylesheet
// ---------------------------------------------------------------------------------------

async fn home(viewer: Result<Viewer, Response>) -> Redirect {
    match viewer {
        Ok(viewer) => Redirect::to(start_page(&viewer)),
        Err(_) => Redirect::to(SIGN_IN),
    }
}

#[derive(Serialize)]
struct SignInPage {
    #[serde(flatten)]
    layout: Layout,
    error: Option<&'static str>,
    start: Option<&'static str>,
    /// The sign-in form's own token, tied to the `gk_login` cookie.
    login_csrf: String,
}

/// The sign-in page; sets the `gk_login` cookie its form is tied to.
async fn sign_in_page(
    State(state): State<SharedState>,
    headers: axum::http::HeaderMap,
    viewer: Result<Viewer, Response>,
) -> Response {
    let viewer = viewer.ok();
    let (nonce, cookie) = guard::sign_in_nonce(&state, &headers);
    let mut response = render(
        StatusCode::OK,
        "sign_in.html",
        &SignInPage {
            start: viewer.as_ref().map(|v| start_page(v)),
            layout: Layout::new("Logga in", viewer.as_ref(), SIGN_IN),
            error: None,
            login_csrf: nonce,
        },
    );
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    token: String,
}

/// What a page answers to a form it cannot read.
const FORM_UNREADABLE: &str = "Formuläret kunde inte läsas: ett fält saknas, står mer än en gång eller har ett värde som inte går att läsa. Ladda om sidan och försök igen.";

/// A form posted to a page, read as axum's `Form` reads it, refused in Swedish when it
/// cannot be read (a field missing, given twice or of the wrong kind, or not UTF-8):
/// axum's own refusal is English, and may quote what was sent.
pub(super) struct PageForm<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for PageForm<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Form::<T>::from_request(request, state).await {
            Ok(Form(value)) => Ok(Self(value)),
            Err(rejection) => {
                let status = rejection.status();
                tracing::warn!(
                    status = status.as_u16(),
                    "refused: a form that cannot be read"
                );
                Err((
                    status,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    FORM_UNREADABLE,
                )
                    .into_response())
            }
        }
    }
}

/// Signs in: a new server-side session whose random id goes in the cookie. The form
/// token was checked by [`guard::check_form_token`] before this runs.
async fn sign_in(
    State(state): State<SharedState>,
    headers: axum::http::HeaderMap,
    PageForm(form): PageForm<SignInForm>,
) -> Response {
    let token = form.token.trim();
    let (nonce, nonce_cookie) = guard::sign_in_nonce(&state, &headers);
    let refused = |error: &'static str| {
        let mut response = render(
            StatusCode::UNAUTHORIZED,
            "sign_in.html",
            &SignInPage {
                layout: Layout::new("Logga in", None, SIGN_IN),
                error: Some(error),
                start: None,
                login_csrf: nonce.clone(),
            },
        );
        if let Some(cookie) = nonce_cookie.clone() {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    };
    if token.is_empty() {
        return refused("Klistra in din token.");
    }
    let session = match crate::app::accounts::sign_in(&state.store, token).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            tracing::warn!("web sign-in refused: unknown, expired or revoked token");
            return refused(
                "Token känns inte igen, har gått ut eller är återkallad. Kontrollera att du klistrat in hela token.",
            );
        }
        Err(err) => {
            tracing::warn!(error = %err, "web sign-in failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "Tjänsten kan inte logga in någon just nu. Försök igen om en stund.",
            )
                .into_response();
        }
    };
    // A session this browser had before is ended, so it never lingers.
    if let Some(old) = guard::session_cookie(&state, &headers) {
        let _ = state
            .store
            .delete_session(crate::auth::token_hash(&old), None)
            .await;
    }
    tracing::info!(actor = ?session.principal.name, role = %crate::names::name_of(&session.principal.role), "web sign-in");
    let mut response = Redirect::to(start_page(&session.principal)).into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        guard::session_cookie_value(&state, &session.id),
    );
    cookies.append(header::SET_COOKIE, guard::clear_sign_in_cookie(&state));
    response
}

/// Signs out: the session is deleted on the server, so the old cookie is worthless.
async fn sign_out(State(state): State<SharedState>, viewer: Result<Viewer, Response>) -> Response {
    if let Ok(viewer) = &viewer {
        state.recent_case_ids.forget(&check::session_key(viewer));
    }
    if let Ok(viewer) = &viewer
        && let Err(err) =
            crate::app::accounts::sign_out(&state.store, &viewer.session_id, viewer).await
    {
        return failure(viewer, &err);
    }
    let mut response = Redirect::to(SIGN_IN).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, guard::clear_session_cookie(&state));
    response
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Headers for every web response: no caching of pages (they may hold case data), no
/// scripts, no framing by other sites, no sniffing, no referrer.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html || !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let defaults: [(HeaderName, &'static str); 4] = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

// ---------------------------------------------------------------------------------------
// Shared view pieces
// ---------------------------------------------------------------------------------------

/// A flag as a card: the contract's flag as the API sends it, with the Swedish words the
/// card shows. `severity` is the name (the card's class); `severity_label` the word shown
/// beside its colour, never colour alone.
#[derive(Serialize)]
struct FlagView {
    #[serde(flatten)]
    flag: crate::contract::FlagJson,
    severity_label: &'static str,
    grounds_label: Vec<&'static str>,
    /// How the flag clears, with links to the form's fields (on the check page only).
    clear: Option<check::ClearView>,
    /// The current answer and the answer forms, on a stored check's cards.
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<responses::AnswerView>,
}

impl FlagView {
    fn of(flag: crate::contract::FlagJson) -> Self {
        Self {
            severity_label: flag.severity.label_sv(),
            grounds_label: flag.grounds.iter().map(|g| g.label_sv()).collect(),
            answer: None,
            flag,
            clear: None,
        }
    }
}

/// A rule that failed: its result is unknown, never "no flag".
#[derive(Serialize)]
struct RuleErrorView {
    rule_id: String,
    title: String,
    message: String,
    position: Option<String>,
}

/// The result of a check as the cards show it.
#[derive(Serialize)]
struct ResultView {
    flags: Vec<FlagView>,
    errors: Vec<RuleErrorView>,
    summary: String,
    clean: bool,
    ruleset: String,
}

impl ResultView {
    fn of(report: &crate::contract::EvaluationReport, rules: &crate::ruleset::RuleSet) -> Self {
        // `report.flags` is sorted most severe first; the cards keep that order.
        let flags: Vec<FlagView> = report
            .flags
            .iter()
            .map(|f| FlagView::of(f.clone()))
            .collect();
        let errors: Vec<RuleErrorView> = report
            .errors
            .iter()
            .map(|e| RuleErrorView {
                rule_id: e.rule_id.clone(),
                title: rules
                    .rule(&e.rule_id)
                    .map_or_else(|| e.rule_id.clone(), |r| r.meta.title.clone()),
                message: e.message.clone(),
                position: e.line.map(|line| match e.column {
                    Some(column) => format!("{}:{line}:{column}", e.script),
                    None => format!("{}:{line}", e.script),
                }),
            })
            .collect();
        let count = |s: Severity| flags.iter().filter(|f| f.flag.severity == s).count();
        let mut parts = Vec::new();
        for (severity, one, many) in [
            (Severity::Critical, "kritisk", "kritiska"),
            (Severity::Warning, "varning", "varningar"),
            (Severity::Info, "information", "information"),
        ] {
            match count(severity) {
                0 => {}
                1 => parts.push(format!("1 {one}")),
                n => parts.push(format!("{n} {many}")),
            }
        }
        let summary = match (flags.len(), errors.len()) {
            (0, 0) => crate::present::clean_summary(crate::present::rules_answered(
                report,
                rules.rules.len(),
            )),
            (0, e) => format!(
                "Inga flaggor, men {e} {} inte köras. Resultatet är därför inte komplett.",
                if e == 1 {
                    "regel kunde"
                } else {
                    "regler kunde"
                }
            ),
            (1, _) => format!("1 flagga: {}.", parts.join(", ")),
            (n, _) => format!("{n} flaggor: {}.", parts.join(", ")),
        };
        Self {
            clean: flags.is_empty() && errors.is_empty(),
            flags,
            errors,
            summary,
            ruleset: format!(
                "{} version {} ({})",
                report.ruleset.name,
                report.ruleset.version,
                report.ruleset.short_hash()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let env = TEMPLATES.as_ref().expect("templates compile");
        for name in [
            "base.html",
            "sign_in.html",
            "error.html",
            "check.html",
            "rules.html",
            "audit.html",
            "users.html",
            "try_form.html",
        ] {
            env.get_template(name).expect(name);
        }
    }

    #[tokio::test]
    async fn the_error_page_renders_in_swedish() {
        let response = render(
            StatusCode::FORBIDDEN,
            "error.html",
            &ErrorPage {
                layout: Layout::new("Behörighet saknas", None, ""),
                heading: "Du har inte behörighet till den här sidan",
                message: "<b>x</b>".to_owned(),
                link: None,
            },
        );
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let html = String::from_utf8(body.to_vec()).expect("UTF-8");
        assert!(html.contains("lang=\"sv\""), "{html}");
        assert!(html.contains("<title>Behörighet saknas"), "{html}");
        assert!(
            html.contains("<h1>Du har inte behörighet till den här sidan</h1>"),
            "{html}"
        );
        // The message is text, never markup.
        assert!(html.contains("<p>&lt;b&gt;x&lt;&#x2f;b&gt;</p>"), "{html}");
        assert!(html.contains("Till inloggningen"), "{html}");
    }

    #[test]
    fn each_role_starts_on_a_page_it_may_open() {
        for &role in Role::ALL {
            let principal = Principal {
                name: "x".into(),
                role,
                purpose: crate::auth::Purpose::Normal,
            };
            let start = start_page(&principal);
            let page = PAGES.iter().find(|p| p.path == start).expect("a page");
            assert!(principal.has_any(page.roles), "{role:?}");
        }
    }
}

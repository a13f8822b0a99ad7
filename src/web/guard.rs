//! What keeps another site from acting in a signed-in browser's name.
//!
//! - [`refuse_cross_origin`] (every route, API included): a request that may change
//!   something (any method but GET, HEAD and OPTIONS) is refused with 403 when its
//!   `Sec-Fetch-Site` is `cross-site` or `same-site`, or its `Origin` is not the
//!   service's own (config `public_url`, else the request's `Host`; `null` only from the
//!   same origin by `Sec-Fetch-Site`). A page on another port of the same host is another
//!   origin and is refused too. A GET or HEAD from another site (`Sec-Fetch-Site`
//!   `same-site` or `cross-site`) is taken only as a top-level navigation (a link
//!   followed, `Sec-Fetch-Mode: navigate` and `Sec-Fetch-Dest: document`): a page of a
//!   sibling host name shares the site, so SameSite cookies go with its images, scripts
//!   and frames, which could otherwise run audits or spend case lookups in the signed-in
//!   person's name.
//! - [`check_form_token`] (web routes): every POST form carries a CSRF token in the
//!   field `csrf`, checked in constant time: the session's own token, or for sign-in
//!   the token tied to the `gk_login` cookie set by the sign-in page (so a sign-in
//!   form posted from elsewhere cannot sign the browser in with someone else's token).
//!   A request with an `Authorization: Bearer` header (a script, never a browser on its
//!   own) is authenticated by that header and needs no form token, except on the sign-in
//!   page, which reads no bearer.
//!
//! Cookies are HttpOnly and SameSite=Strict; with an https public URL `Secure` and named
//! with the `__Host-` prefix ([`CookieNames`]). A cookie given twice counts as not given.

use axum::Form;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::Cookie;
use subtle::ConstantTimeEq;

use super::{CSRF_FIELD, SESSION_COOKIE, SIGN_IN, SIGN_IN_COOKIE, SharedState};
use crate::app::AppError;
use crate::store::accounts::SessionInfo;

/// The account a post's bearer token belongs to, settled before its body was read and
/// handed on to the page (so it is read once).
#[derive(Clone, Debug)]
pub struct BearerPrincipal(pub crate::auth::Principal);

/// A live session, resolved from the cookie.
#[derive(Clone, Debug)]
pub struct Session {
    /// The cookie's session id.
    pub id: String,
    pub info: SessionInfo,
}

/// The names of the service's cookies, and the sign-in cookie's path.
///
/// With an https public URL both names carry the `__Host-` prefix: a browser then takes
/// them only from a secure page of this very host name, with `Path=/` and no `Domain`, so
/// a sibling domain cannot plant a session of its own. Cookies are not kept apart by port,
/// so another service on the same host name (any port) can still replace them; the
/// service needs a host name of its own (README, "Web pages").
pub struct CookieNames {
    pub session: &'static str,
    pub sign_in: &'static str,
    pub sign_in_path: &'static str,
}

pub fn cookie_names(state: &SharedState) -> CookieNames {
    if state.web.secure_cookies {
        CookieNames {
            session: "__Host-gk_session",
            sign_in: "__Host-gk_login",
            sign_in_path: "/",
        }
    } else {
        CookieNames {
            session: SESSION_COOKIE,
            sign_in: SIGN_IN_COOKIE,
            sign_in_path: SIGN_IN,
        }
    }
}

/// Every value the request's `Cookie` headers give the cookie `name`.
fn cookie_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
        .collect()
}

/// The value of the cookie `name` when the request gives it once, with the form of the
/// ids this module hands out. Given twice, it is none: a page on another path or port of
/// the same host can add a second cookie of the name (a browser sends both), and taking
/// either would let that page choose the session.
fn only_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = cookie_values(headers, name);
    let value = values.pop().filter(|_| values.is_empty())?;
    is_random_token(&value).then_some(value)
}

/// The session id in the request's cookie, when it gives exactly one.
pub fn session_cookie(state: &SharedState, headers: &HeaderMap) -> Option<String> {
    only_cookie(headers, cookie_names(state).session)
}

/// Whether the request has any cookie of the session's name (to clear it when it names no
/// live session).
pub fn has_session_cookie(state: &SharedState, headers: &HeaderMap) -> bool {
    !cookie_values(headers, cookie_names(state).session).is_empty()
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::auth::bearer_token)
}

/// Whether `text` has the form of the ids this module hands out (64 hex digits).
fn is_random_token(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The live session the request's cookie names.
pub async fn session_of(
    state: &SharedState,
    headers: &HeaderMap,
) -> Result<Option<Session>, AppError> {
    let Some(id) = session_cookie(state, headers) else {
        return Ok(None);
    };
    Ok(
        crate::app::accounts::session(&state.store, &id, state.web.session_idle)
            .await?
            .map(|info| Session { id, info }),
    )
}

fn cookie(
    state: &SharedState,
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<u64>,
) -> HeaderValue {
    let secure = if state.web.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let max_age = max_age.map_or_else(String::new, |s| format!("; Max-Age={s}"));
    // Only names and hex values from this module reach here.
    HeaderValue::from_str(&format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path={path}{max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("gk_invalid=; Max-Age=0"))
}

/// The session cookie for a new session (no Max-Age: gone when the browser closes; the
/// server ends it after the idle time anyway).
pub fn session_cookie_value(state: &SharedState, id: &str) -> HeaderValue {
    cookie(state, cookie_names(state).session, id, "/", None)
}

pub fn clear_session_cookie(state: &SharedState) -> HeaderValue {
    cookie(state, cookie_names(state).session, "", "/", Some(0))
}

pub fn clear_sign_in_cookie(state: &SharedState) -> HeaderValue {
    let names = cookie_names(state);
    cookie(state, names.sign_in, "", names.sign_in_path, Some(0))
}

/// The sign-in form's token: the `gk_login` cookie's value when the browser has one,
/// else a new random one and the cookie to set.
pub fn sign_in_nonce(state: &SharedState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let names = cookie_names(state);
    match only_cookie(headers, names.sign_in) {
        Some(nonce) => (nonce, None),
        None => {
            let nonce = hex::encode(rand::random::<[u8; 32]>());
            let set = cookie(state, names.sign_in, &nonce, names.sign_in_path, Some(3600));
            (nonce, Some(set))
        }
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The `host[:port]` of an origin `scheme://host[:port]` with scheme http or https.
fn origin_authority(origin: &str) -> Option<&str> {
    let (scheme, authority) = origin.split_once("://")?;
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        .then_some(authority)
        .filter(|a| !a.is_empty() && !a.contains('/'))
}

/// Why a request from a browser looks like it comes from another site, if it does.
///
/// `Sec-Fetch-Site` (which no page can forge) must be `same-origin` or `none` when
/// sent. `Origin` must be the service's own; `Origin: null` is accepted only beside
/// `Sec-Fetch-Site: same-origin`, since browsers send `null` for the service's own forms
/// under its `Referrer-Policy: no-referrer`.
fn cross_origin(state: &SharedState, headers: &HeaderMap) -> Option<&'static str> {
    let mut same_origin = false;
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("cross-site").to_ascii_lowercase();
        if site != "same-origin" && site != "none" {
            return Some("sec-fetch-site");
        }
        same_origin = site == "same-origin";
    }
    let origin = headers.get(header::ORIGIN)?;
    let Ok(origin) = origin.to_str() else {
        return Some("origin");
    };
    if origin == "null" {
        return (!same_origin).then_some("origin");
    }
    let own = match &state.web.public_origin {
        Some(public) => origin.eq_ignore_ascii_case(public),
        None => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            match (origin_authority(origin), host) {
                (Some(authority), Some(host)) => authority.eq_ignore_ascii_case(host),
                _ => false,
            }
        }
    };
    (!own).then_some("origin")
}

/// Why a GET or HEAD from a browser is not to be answered, if it is not: one from
/// another site (`Sec-Fetch-Site` `same-site` or `cross-site`) that is not a top-level
/// navigation. Clients that send no `Sec-Fetch-Site` are not affected.
fn cross_site_subresource(headers: &HeaderMap) -> Option<&'static str> {
    let value = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("?").to_ascii_lowercase())
    };
    let site = value("sec-fetch-site")?;
    if site == "same-origin" || site == "none" {
        return None;
    }
    let navigation = value("sec-fetch-mode").as_deref() == Some("navigate")
        && value("sec-fetch-dest")
            .as_deref()
            .is_none_or(|d| d == "document");
    (!navigation).then_some("sec-fetch-site")
}

/// The route a request matched (`/api/v1/checks/{id}`), for logs: never the path as
/// sent, which may hold anything a client typed, a case id included.
pub fn route_of(extensions: &axum::http::Extensions) -> &str {
    extensions
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
}

/// Refuses, with 403, a state-changing request that a browser says comes from another
/// origin. Clients that send neither header (the CLI, scripts) are not affected.
pub async fn refuse_cross_origin(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    let refused = if is_safe(request.method()) {
        cross_site_subresource(request.headers())
    } else {
        cross_origin(&state, request.headers())
    };
    if let Some(header) = refused {
        tracing::warn!(
            route = route_of(request.extensions()),
            header,
            "refused: request from another origin"
        );
        return forbidden_text(
            "Begäran kom från en annan webbplats och avvisades. Använd tjänstens egna sidor.",
        );
    }
    next.run(request).await
}

fn forbidden_text(message: &'static str) -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// The `csrf` field of a form body (URL-encoded or multipart).
async fn form_token(headers: &HeaderMap, body: Bytes) -> Option<String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut request = Request::new(Body::from(body));
    // A POST, so the form is read from the body, never from the query.
    *request.method_mut() = Method::POST;
    *request.headers_mut() = headers.clone();
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(request, &()).await.ok()?;
        while let Ok(Some(field)) = multipart.next_field().await {
            if field.name() == Some(CSRF_FIELD) {
                return field.text().await.ok();
            }
        }
        None
    } else {
        let Form(pairs) = Form::<Vec<(String, String)>>::from_request(request, &())
            .await
            .ok()?;
        pairs
            .into_iter()
            .find(|(name, _)| name == CSRF_FIELD)
            .map(|(_, value)| value)
    }
}

/// Sessions or tokens could not be read (the database is unavailable).
pub(super) fn sessions_unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Tjänsten kan inte läsa inloggningar just nu. Försök igen om en stund.",
    )
        .into_response()
}

fn same_token(given: Option<&str>, expected: &str) -> bool {
    given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
}

/// A form without the right form token.
fn refused_form(route: &str, token_given: bool) -> Response {
    tracing::warn!(route, token_given, "refused: missing or wrong form token");
    forbidden_text(
        "Formuläret kunde inte tas emot: det kom inte från den här sidan eller har gått ut. Ladda om sidan och försök igen.",
    )
}

/// Checks the CSRF token of every POST to a web page; hands the resolved session on to
/// the page (so it is read once).
pub async fn check_form_token(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    if is_safe(request.method()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    // Who is posting is settled from the headers before any of the body is read: a post
    // without a known token, a live session (or, to the sign-in page, without its
    // cookie) never makes the service hold its body.
    let mut session = None;
    let mut bearer = None;
    let expected =
        if let Some(token) = bearer_of(&parts.headers).filter(|_| parts.uri.path() != SIGN_IN) {
            match crate::app::accounts::authenticate(&state.store, token).await {
                Ok(Some(principal)) => {
                    bearer = Some(principal);
                    None
                }
                Ok(None) => {
                    tracing::warn!(
                        route = route_of(&parts.extensions),
                        "refused: unknown bearer token"
                    );
                    return Redirect::to(SIGN_IN).into_response();
                }
                Err(err) => {
                    tracing::warn!(error = %err, "token could not be read");
                    return sessions_unavailable();
                }
            }
        } else if parts.uri.path() == SIGN_IN {
            match only_cookie(&parts.headers, cookie_names(&state).sign_in) {
                Some(expected) => Some(expected),
                None => return refused_form(route_of(&parts.extensions), false),
            }
        } else {
            match session_of(&state, &parts.headers).await {
                Ok(Some(found)) => {
                    let expected = found.info.csrf_token.clone();
                    session = Some(found);
                    Some(expected)
                }
                // No live session: the page itself sends the browser to sign in.
                Ok(None) => {
                    let mut response = Redirect::to(SIGN_IN).into_response();
                    if has_session_cookie(&state, &parts.headers) {
                        response
                            .headers_mut()
                            .insert(header::SET_COOKIE, clear_session_cookie(&state));
                    }
                    return response;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "session could not be read");
                    return sessions_unavailable();
                }
            }
        };
    let poster = bearer
        .as_ref()
        .or_else(|| session.as_ref().map(|s: &Session| &s.info.principal));
    // The candidate upload carries an archive: its own, larger cap, for those who may
    // try a candidate; everyone else's post is a form.
    let uploads = parts.uri.path() == super::CANDIDATE_PATH
        && poster.is_some_and(|p| p.has_any(crate::app::candidate::CANDIDATE_ROLES));
    let limit = if uploads {
        super::CANDIDATE_MAX_BODY.max(state.max_body_bytes)
    } else {
        state.max_body_bytes
    };
    // The whole body within the body timeout, however it trickles in; the connection's
    // idle timeout only bounds each pause.
    let body =
        match tokio::time::timeout(state.body_timeout, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(body)) => body,
            Ok(Err(_)) => {
                let text = if uploads {
                    "Arkivet är för stort: högst 5 MB tas emot."
                } else {
                    "Formuläret är för stort."
                };
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    text,
                )
                    .into_response();
            }
            Err(_) => {
                return (
                    StatusCode::REQUEST_TIMEOUT,
                    [
                        (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                        (header::CONNECTION, "close"),
                    ],
                    "Formuläret kom inte fram i tid. Försök igen.",
                )
                    .into_response();
            }
        };
    // A bearer header is never added by a browser on its own (and no other origin may
    // add one: no CORS), and a page given one is signed in by it alone, never by the
    // cookie ([`super::Viewer`]), so such a post needs no form token; its body is read
    // within the same limits. The sign-in page reads no bearer: its form token is always
    // needed.
    if let Some(expected) = expected {
        let given = form_token(&parts.headers, body.clone()).await;
        if !same_token(given.as_deref(), &expected) {
            return refused_form(route_of(&parts.extensions), given.is_some());
        }
    }
    let mut request = Request::from_parts(parts, Body::from(body));
    if let Some(session) = session {
        request.extensions_mut().insert(session);
    }
    if let Some(principal) = bearer {
        request.extensions_mut().insert(BearerPrincipal(principal));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_name_their_authority() {
        assert_eq!(
            origin_authority("http://127.0.0.1:8480"),
            Some("127.0.0.1:8480")
        );
        assert_eq!(
            origin_authority("HTTPS://gk.example.se"),
            Some("gk.example.se")
        );
        assert_eq!(origin_authority("null"), None);
        assert_eq!(origin_authority("file://"), None);
        assert_eq!(origin_authority("http://a/b"), None);
    }

    #[test]
    fn form_tokens_compare_whole() {
        assert!(same_token(Some("abc"), "abc"));
        assert!(!same_token(Some("ab"), "abc"));
        assert!(!same_token(Some(""), "abc"));
        assert!(!same_token(None, "abc"));
    }
}

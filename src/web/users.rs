//! "Användare": administrators create tokens (shown once), list them and revoke them,
//! through the same use cases as `gk-regler token` and the admin API.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::{Layout, SharedState, USERS_PAGE, Viewer, failure, refusal, render};
use crate::app::AppError;
use crate::app::accounts::{self, Expiry, NewToken};
use crate::auth::{Purpose, Role};
use crate::store::accounts::Account;

#[derive(Serialize)]
struct UsersPage {
    #[serde(flatten)]
    layout: Layout,
    accounts: Vec<AccountView>,
    roles: Vec<RoleOption>,
    form: CreateForm,
    created: Option<CreatedView>,
    message: Option<String>,
    /// What was wrong with the form to create a token.
    error: Option<String>,
    /// Why a token was not revoked, shown by the list.
    revoke_error: Option<String>,
    /// The viewer signed in with a test token: it may only make test tokens and
    /// revoke none, so the page offers nothing else.
    test_only: bool,
}

/// What went wrong, and so where the page says it.
enum Problem {
    Create(String),
    Revoke(String),
}

#[derive(Serialize)]
struct AccountView {
    id: i64,
    name: String,
    role: &'static str,
    purpose: &'static str,
    created_at: String,
    expires_at: String,
    status: String,
    active: bool,
}

#[derive(Serialize)]
struct RoleOption {
    value: &'static str,
    label: &'static str,
}

#[derive(Serialize)]
struct CreatedView {
    name: String,
    token: String,
}

#[derive(Default, Deserialize, Serialize)]
pub(super) struct CreateForm {
    #[serde(default, rename(deserialize = "namn"))]
    name: String,
    #[serde(default, rename(deserialize = "roll"))]
    role: String,
    #[serde(default, rename(deserialize = "syfte"))]
    purpose: String,
    #[serde(default, rename(deserialize = "giltig"))]
    expires: String,
}

fn view(account: &Account, now: &str) -> AccountView {
    let expired = account.expires_at.as_deref().is_some_and(|at| at <= now);
    let status = match (&account.revoked_at, expired) {
        (Some(at), _) => format!("Återkallad {}", crate::present::swedish_time(at)),
        (None, true) => "Har gått ut".to_owned(),
        (None, false) => "Aktiv".to_owned(),
    };
    AccountView {
        id: account.id,
        name: account.name.clone(),
        role: account.role.label_sv(),
        purpose: match account.purpose {
            Purpose::Normal => "vanligt arbete",
            Purpose::Test => "testkontroller",
        },
        created_at: crate::present::swedish_time(&account.created_at),
        expires_at: account
            .expires_at
            .as_deref()
            .map_or_else(|| "–".to_owned(), crate::present::swedish_time),
        active: account.revoked_at.is_none() && !expired,
        status,
    }
}

/// Renders the page with the current list; `status` and the extra parts as given.
async fn show(
    state: &SharedState,
    viewer: &Viewer,
    status: StatusCode,
    form: CreateForm,
    created: Option<CreatedView>,
    message: Option<String>,
    problem: Option<Problem>,
) -> Response {
    let accounts = match accounts::list(&state.store, viewer).await {
        Ok(accounts) => accounts,
        Err(err) => return failure(viewer, &err),
    };
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    render(
        status,
        "users.html",
        &UsersPage {
            layout: Layout::new("Användare", Some(viewer), USERS_PAGE.path),
            accounts: accounts.iter().map(|a| view(a, &now)).collect(),
            roles: Role::ALL
                .iter()
                .copied()
                .map(|r| RoleOption {
                    value: r.as_str(),
                    label: r.label_sv(),
                })
                .collect(),
            form,
            created,
            message,
            error: match &problem {
                Some(Problem::Create(text)) => Some(text.clone()),
                _ => None,
            },
            revoke_error: match problem {
                Some(Problem::Revoke(text)) => Some(text),
                _ => None,
            },
            test_only: viewer.is_for_tests(),
        },
    )
}

pub(super) async fn page(State(state): State<SharedState>, viewer: Viewer) -> Response {
    if let Some(refused) = refusal(&viewer, &USERS_PAGE) {
        return refused;
    }
    let form = CreateForm {
        role: Role::Handlaggare.as_str().to_owned(),
        ..CreateForm::default()
    };
    show(&state, &viewer, StatusCode::OK, form, None, None, None).await
}

pub(super) async fn create(
    State(state): State<SharedState>,
    viewer: Viewer,
    super::PageForm(form): super::PageForm<CreateForm>,
) -> Response {
    if let Some(refused) = refusal(&viewer, &USERS_PAGE) {
        return refused;
    }
    let parsed = (|| {
        let role = Role::from_name(&form.role)
            .ok_or_else(|| AppError::Input("välj en roll".to_owned()))?;
        let purpose = Purpose::from_name(if form.purpose.is_empty() {
            "normal"
        } else {
            &form.purpose
        })
        .ok_or_else(|| AppError::Input("välj ett syfte".to_owned()))?;
        let expires = match form.expires.trim() {
            "" => None,
            text => Some(Expiry::parse(text)?),
        };
        Ok::<_, AppError>(NewToken {
            name: form.name.clone(),
            role,
            purpose,
            expires,
        })
    })();
    let result = match parsed {
        Ok(new) => accounts::create(&state.store, &viewer, new).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(created) => {
            let name = form.name.trim().to_owned();
            let form = CreateForm {
                role: Role::Handlaggare.as_str().to_owned(),
                ..CreateForm::default()
            };
            show(
                &state,
                &viewer,
                StatusCode::OK,
                form,
                Some(CreatedView {
                    name,
                    token: created.token,
                }),
                None,
                None,
            )
            .await
        }
        Err(AppError::Input(message)) => {
            let error = format!("Token skapades inte: {message}.");
            show(
                &state,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                None,
                None,
                Some(Problem::Create(error)),
            )
            .await
        }
        Err(err) => failure(&viewer, &err),
    }
}

#[derive(Deserialize)]
pub(super) struct RevokeForm {
    #[serde(default)]
    id: String,
}

pub(super) async fn revoke(
    State(state): State<SharedState>,
    viewer: Viewer,
    super::PageForm(form): super::PageForm<RevokeForm>,
) -> Response {
    if let Some(refused) = refusal(&viewer, &USERS_PAGE) {
        return refused;
    }
    let default_form = || CreateForm {
        role: Role::Handlaggare.as_str().to_owned(),
        ..CreateForm::default()
    };
    let Ok(id) = form.id.trim().parse::<i64>() else {
        let error = Some(Problem::Revoke(
            "Ange vilken token som ska återkallas.".to_owned(),
        ));
        return show(
            &state,
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            default_form(),
            None,
            None,
            error,
        )
        .await;
    };
    match accounts::revoke(&state.store, &viewer, id).await {
        Ok(()) => {
            let message = Some(format!(
                "Token nr {id} är återkallad. Den kan inte användas längre, och inloggningar med den är avslutade."
            ));
            show(
                &state,
                &viewer,
                StatusCode::OK,
                default_form(),
                None,
                message,
                None,
            )
            .await
        }
        Err(AppError::Conflict(message)) => {
            show(
                &state,
                &viewer,
                StatusCode::CONFLICT,
                default_form(),
                None,
                None,
                Some(Problem::Revoke(super::form::capitalised(&message))),
            )
            .await
        }
        Err(AppError::NotFound) => {
            let error = Some(Problem::Revoke(format!(
                "Det finns ingen aktiv token nr {id}."
            )));
            show(
                &state,
                &viewer,
                StatusCode::NOT_FOUND,
                default_form(),
                None,
                None,
                error,
            )
            .await
        }
        Err(err) => failure(&viewer, &err),
    }
}

//! `POST /api/v3/token` (`OAuth2IssueToken`): the `password` and `refresh_token` grants, form-
//! urlencoded or multipart bodies, bare `OAuth2Result` / `OAuth2Error` bodies (no envelope), and
//! a throttle on repeated failed logins per user name and client address.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tallyman_store::TokenKind;

use crate::auth::{self, dummy_hash, token_digest};
use crate::error::{json_response, ApiError};
use crate::AppState;

/// Successful `/token` answer, exactly as VSPC spells it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OAuth2Result {
    pub access_token: Option<String>,
    pub token_type: Option<String>,
    pub refresh_token: Option<String>,
    pub mfa_token: Option<String>,
    pub encrypted_code: Option<String>,
    pub expires_in: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuth2ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OAuth2Error {
    pub error: OAuth2ErrorCode,
    pub error_description: Option<String>,
    pub error_uri: Option<String>,
}

/// The form fields of the token request (all optional on the wire; checked per grant).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct OAuth2IssueTokenBody {
    grant_type: String,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    mfa_token: Option<String>,
    mfa_code: Option<String>,
    code: Option<String>,
    public_key: Option<String>,
    #[schema(rename = "userUid")]
    user_uid: Option<uuid::Uuid>,
    #[schema(rename = "readOnly")]
    read_only: Option<bool>,
}

enum TokenFailure {
    OAuth(OAuth2ErrorCode, String),
    Api(ApiError),
}

impl From<ApiError> for TokenFailure {
    fn from(e: ApiError) -> Self {
        TokenFailure::Api(e)
    }
}

fn oauth(code: OAuth2ErrorCode, description: impl Into<String>) -> TokenFailure {
    TokenFailure::OAuth(code, description.into())
}

impl IntoResponse for TokenFailure {
    fn into_response(self) -> Response {
        match self {
            TokenFailure::OAuth(error, description) => json_response(
                StatusCode::BAD_REQUEST,
                &OAuth2Error {
                    error,
                    error_description: Some(description),
                    error_uri: None,
                },
            ),
            TokenFailure::Api(e) => e.into_response(),
        }
    }
}

const BAD_CREDENTIALS: &str =
    "Cannot complete login due to an incorrect user name or password, or insufficient rights.";

/// Reads the form fields; empty values count as absent, as some clients send every key.
async fn read_form(
    state: &AppState,
    request: Request,
) -> Result<HashMap<String, String>, TokenFailure> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut fields = HashMap::new();
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(request, state).await.map_err(|e| {
            oauth(
                OAuth2ErrorCode::InvalidRequest,
                format!("Malformed multipart body: {e}"),
            )
        })?;
        while let Some(field) = multipart.next_field().await.map_err(|e| {
            oauth(
                OAuth2ErrorCode::InvalidRequest,
                format!("Malformed multipart body: {e}"),
            )
        })? {
            let name = field.name().unwrap_or_default().to_string();
            let value = field.text().await.map_err(|e| {
                oauth(
                    OAuth2ErrorCode::InvalidRequest,
                    format!("Malformed multipart body: {e}"),
                )
            })?;
            if !value.is_empty() {
                fields.entry(name).or_insert(value);
            }
        }
    } else {
        let limit = state.config.body_limit;
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|e| TokenFailure::Api(ApiError::unreadable_body(&e, limit)))?;
        for (k, v) in form_urlencoded::parse(&bytes) {
            if !v.is_empty() {
                fields
                    .entry(k.into_owned())
                    .or_insert_with(|| v.into_owned());
            }
        }
    }
    Ok(fields)
}

fn checked<'a>(
    fields: &'a HashMap<String, String>,
    name: &str,
    max: usize,
) -> Result<Option<&'a str>, TokenFailure> {
    match fields.get(name) {
        Some(v) if v.chars().count() > max => Err(oauth(
            OAuth2ErrorCode::InvalidRequest,
            format!("The field {name} is longer than {max} characters."),
        )),
        Some(v) => Ok(Some(v.as_str())),
        None => Ok(None),
    }
}

fn parse_bool(v: Option<&str>) -> Result<bool, TokenFailure> {
    match v.map(|s| s.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(s) if s == "true" || s == "1" => Ok(true),
        Some(s) if s == "false" || s == "0" => Ok(false),
        Some(_) => Err(oauth(
            OAuth2ErrorCode::InvalidRequest,
            "The field readOnly must be true or false.",
        )),
    }
}

#[utoipa::path(
    post,
    path = "/token",
    operation_id = "OAuth2IssueToken",
    tag = "Authentication",
    params(crate::select::SelectParam),
    request_body(content = OAuth2IssueTokenBody, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = OAuth2Result),
        (status = 400, body = OAuth2Error),
    ),
    security(()),
)]
pub async fn o_auth_2_issue_token(State(state): State<AppState>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    match issue(&state, peer, request).await {
        Ok(result) => json_response(StatusCode::OK, &result),
        Err(failure) => failure.into_response(),
    }
}

async fn issue(
    state: &AppState,
    peer: Option<SocketAddr>,
    request: Request,
) -> Result<OAuth2Result, TokenFailure> {
    let fields = read_form(state, request).await?;
    let grant = fields
        .get("grant_type")
        .map(|s| s.as_str())
        .ok_or_else(|| {
            oauth(
                OAuth2ErrorCode::InvalidRequest,
                "The grant_type field is required.",
            )
        })?;
    let read_only = parse_bool(checked(&fields, "readOnly", 16)?)?;
    let tokens = match grant {
        "password" => password_grant(state, peer, &fields, read_only).await?,
        "refresh_token" => refresh_grant(state, &fields).await?,
        "authorization_code" | "public_key" | "mfa" | "as" => {
            return Err(oauth(
                OAuth2ErrorCode::UnsupportedGrantType,
                format!("The grant type {grant} is not supported by this server; use password or refresh_token."),
            ))
        }
        other => {
            return Err(oauth(
                OAuth2ErrorCode::UnsupportedGrantType,
                format!("Unknown grant type {other:?}."),
            ))
        }
    };
    Ok(OAuth2Result {
        access_token: Some(tokens.access_token),
        token_type: Some("bearer".into()),
        refresh_token: Some(tokens.refresh_token),
        mfa_token: None,
        encrypted_code: None,
        expires_in: i32::try_from(tokens.expires_in).unwrap_or(i32::MAX),
    })
}

async fn password_grant(
    state: &AppState,
    peer: Option<SocketAddr>,
    fields: &HashMap<String, String>,
    read_only: bool,
) -> Result<auth::IssuedTokens, TokenFailure> {
    let username = checked(fields, "username", 2048)?.ok_or_else(|| {
        oauth(
            OAuth2ErrorCode::InvalidRequest,
            "The username field is required.",
        )
    })?;
    let password = checked(fields, "password", 128)?.ok_or_else(|| {
        oauth(
            OAuth2ErrorCode::InvalidRequest,
            "The password field is required.",
        )
    })?;

    let address = peer
        .map(|p| p.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let throttle_key = format!("{}|{}", username.to_lowercase(), address);
    let now = state.clock.now();
    let window = state.config.login_window;
    // Reserve this attempt before checking the password: one atomic statement, so parallel
    // attempts (on any node) are counted one by one and no burst gets past the limit.
    let attempts = state
        .store
        .reserve_login_attempt(&throttle_key, now, now - window)
        .await
        .map_err(ApiError::from)?;
    if attempts.count > state.config.login_max_failures {
        let retry_after = (attempts.window_start + window - now).num_seconds();
        tracing::warn!(user = username, %address, "login throttled after repeated failures");
        return Err(ApiError::too_many_requests(
            retry_after,
            "Too many failed logins for this user from this address; try again later.",
        )
        .into());
    }

    let user = state
        .store
        .user_by_name(username)
        .await
        .map_err(ApiError::from)?;
    // Verify against a dummy hash for unknown users so timing does not reveal who exists.
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.as_str())
        .unwrap_or(dummy_hash());
    let matches = match state.hash_gate.verify(password, hash).await {
        Ok(matches) => matches,
        Err(auth::Busy) => {
            // Not the caller's fault: give the attempt back.
            state
                .store
                .release_login_attempt(&throttle_key)
                .await
                .map_err(ApiError::from)?;
            tracing::warn!(user = username, %address, "login refused: password checks saturated");
            return Err(ApiError::too_many_requests(
                1,
                "The server is busy checking other logins; try again in a moment.",
            )
            .into());
        }
    };
    match user {
        Some(user) if matches && user.enabled => {
            state
                .store
                .clear_login_failures(&throttle_key)
                .await
                .map_err(ApiError::from)?;
            Ok(auth::issue_tokens(state, &user, read_only).await?)
        }
        _ => {
            tracing::info!(user = username, %address, "failed login");
            Err(oauth(OAuth2ErrorCode::InvalidRequest, BAD_CREDENTIALS))
        }
    }
}

async fn refresh_grant(
    state: &AppState,
    fields: &HashMap<String, String>,
) -> Result<auth::IssuedTokens, TokenFailure> {
    let token = checked(fields, "refresh_token", 2048)?.ok_or_else(|| {
        oauth(
            OAuth2ErrorCode::InvalidRequest,
            "The refresh_token field is required.",
        )
    })?;
    let invalid = || {
        oauth(
            OAuth2ErrorCode::InvalidGrant,
            "The refresh token is invalid or has expired.",
        )
    };
    let now = state.clock.now();
    let record = state
        .store
        .token(&token_digest(token))
        .await
        .map_err(ApiError::from)?
        .filter(|t| t.kind == TokenKind::Refresh && t.expires_at > now)
        .ok_or_else(invalid)?;
    let user = state
        .store
        .user(record.user_uid)
        .await
        .map_err(ApiError::from)?
        .filter(|u| u.enabled)
        .ok_or_else(invalid)?;
    Ok(auth::issue_tokens(state, &user, record.read_only).await?)
}

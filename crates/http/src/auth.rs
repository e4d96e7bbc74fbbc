//! Authentication and authorization: argon2 password hashes, opaque bearer tokens (stored only
//! as SHA-256 digests), the middleware that turns `Authorization: Bearer …` into a [`Caller`],
//! role checks against each operation's admitted roles, and the caller's tenant scope.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use tallyman_store::{Role, TokenKind, TokenRecord, User};
use uuid::Uuid;

pub use crate::password_gate::{Busy, HashGate};
pub use tallyman_app::credentials::{
    dummy_hash, hash_password, new_api_key, new_token, token_digest, verify_password,
};
pub use tallyman_app::Scope;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Access and refresh token for one user, as `/token` hands them out.
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

pub async fn issue_tokens(
    state: &AppState,
    user: &User,
    read_only: bool,
) -> ApiResult<IssuedTokens> {
    let now = state.clock.now();
    let access_token = new_token();
    let refresh_token = new_token();
    let access_ttl = state.config.access_token_ttl;
    state
        .store
        .insert_token(&TokenRecord {
            digest: token_digest(&access_token),
            user_uid: user.uid,
            kind: TokenKind::Access,
            read_only,
            issued_at: now,
            expires_at: now + access_ttl,
        })
        .await?;
    state
        .store
        .insert_token(&TokenRecord {
            digest: token_digest(&refresh_token),
            user_uid: user.uid,
            kind: TokenKind::Refresh,
            read_only,
            issued_at: now,
            expires_at: now + state.config.refresh_token_ttl,
        })
        .await?;
    Ok(IssuedTokens {
        access_token,
        refresh_token,
        expires_in: access_ttl.num_seconds(),
    })
}

/// The authenticated user behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_uid: Uuid,
    pub name: String,
    pub role: Role,
    pub organization_uid: Uuid,
    /// Read-only tokens may only read.
    pub read_only: bool,
}

impl Caller {
    /// Refuses callers whose role the operation does not admit.
    pub fn require(&self, admitted: &[Role]) -> ApiResult<()> {
        if admitted.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "The role {} is not allowed to perform this operation.",
                self.role
            )))
        }
    }

    /// The caller's organization and everything below it in the provider → reseller →
    /// company tree.
    pub async fn scope(&self, state: &AppState) -> ApiResult<Scope> {
        Ok(state.app.scope(self.role, self.organization_uid).await?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("Authorization is required."))
    }
}

/// Pulls the token out of `Authorization: Bearer <token>`; the scheme is matched ignoring case.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Resolves a live access token to its user, or explains why not.
pub async fn authenticate(state: &AppState, token: &str, now: DateTime<Utc>) -> ApiResult<Caller> {
    let digest = token_digest(token);
    // An access token from /token (read with its user in one query), or else an API key (sent
    // the same way).
    let user = match state
        .store
        .token_with_user(&digest)
        .await?
        .filter(|(t, _)| t.kind == TokenKind::Access)
    {
        Some((record, _)) if record.expires_at <= now => {
            return Err(ApiError::unauthorized("The access token has expired."))
        }
        Some((record, user)) => Some((user, record.read_only)),
        None => match state.store.api_key(&digest).await? {
            Some(key) => state
                .store
                .user(key.user_uid)
                .await?
                .map(|user| (user, key.read_only)),
            None => return Err(ApiError::unauthorized("The access token is not valid.")),
        },
    };
    let (user, read_only) = user
        .filter(|(u, _)| u.enabled)
        .ok_or_else(|| ApiError::unauthorized("The user of this token is disabled or gone."))?;
    Ok(Caller {
        user_uid: user.uid,
        name: user.name,
        role: user.role,
        organization_uid: user.organization_uid,
        read_only,
    })
}

/// Middleware for every route except `/token`: authenticates the bearer token and enforces
/// read-only tokens.
pub async fn require_auth(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let Some(token) = bearer(&parts) else {
        return ApiError::unauthorized("Authorization is required.").into_response();
    };
    let now = state.clock.now();
    let caller = match authenticate(&state, token, now).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if caller.read_only && !matches!(parts.method, Method::GET | Method::HEAD) {
        return ApiError::forbidden("This token is read-only; only GET requests are allowed.")
            .into_response();
    }
    tracing::Span::current().record("user", caller.name.as_str());
    parts.extensions.insert(caller);
    next.run(Request::from_parts(parts, body)).await
}

pub use crate::config::{default_access_ttl, default_refresh_ttl};

//! Authentication and authorization: argon2 password hashes, opaque bearer tokens (stored only
//! as SHA-256 digests), the middleware that turns `Authorization: Bearer …` into a [`Caller`],
//! role checks against each operation's admitted roles, and the caller's tenant scope.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tallyman_store::{OrganizationType, Role, TokenKind, TokenRecord, User};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
}

/// Checks a password against a stored PHC hash. Malformed hashes never verify.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Checks `password` against a PHC hash using `memory` as argon2's working memory, so the
/// 19 MiB a verification needs is reused rather than allocated (and kept by the allocator) on
/// every login. Malformed hashes never verify.
pub fn verify_password_with_memory(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    if argon
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..blocks])
        .is_err()
    {
        return false;
    }
    // `Output` compares in constant time.
    argon2::password_hash::Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// Bounds password verification: at most `slots` argon2 runs at once (each needs ~19 MiB and a
/// core for tens of milliseconds), on the blocking pool, each with working memory taken from a
/// pool of at most `slots` buffers. A login that cannot get a slot within `wait` is refused
/// with [`Busy`], so a flood of logins costs neither memory nor unbounded queueing.
pub struct HashGate {
    permits: Arc<Semaphore>,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    wait: StdDuration,
}

/// No hashing slot came free in time.
#[derive(Debug)]
pub struct Busy;

impl HashGate {
    pub fn new(slots: usize, wait: StdDuration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(slots.max(1))),
            memory: Arc::default(),
            wait,
        }
    }

    /// One slot per core.
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores, StdDuration::from_secs(2))
    }

    /// Verifies `password` against `phc` once a slot is free.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, Busy> {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        let pool = self.memory.clone();
        let password = password.to_string();
        let phc = phc.to_string();
        // The permit and the buffer live in the blocking task, so a client that goes away
        // mid-verification neither frees its slot early nor loses the buffer.
        let task = tokio::task::spawn_blocking(move || {
            let mut memory = pool
                .lock()
                .map(|mut free| free.pop())
                .ok()
                .flatten()
                .unwrap_or_default();
            let matches = verify_password_with_memory(&password, &phc, &mut memory);
            if let Ok(mut free) = pool.lock() {
                free.push(memory);
            }
            drop(permit);
            matches
        });
        Ok(task.await.unwrap_or(false))
    }
}

/// A password hash that never matches, used so unknown users cost as much time as known ones.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("tallyman-timing-equaliser").unwrap_or_default())
}

/// A new random bearer token: 32 random bytes, base64url without padding.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a token.
pub fn token_digest(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

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

/// `root` and every organization below it in the provider → reseller → company tree.
pub fn subtree(orgs: &[tallyman_store::Organization], root: Uuid) -> HashSet<Uuid> {
    let mut inside = HashSet::from([root]);
    // The tree is shallow; iterate to a fixed point so any depth is handled.
    loop {
        let before = inside.len();
        for org in orgs {
            if org.parent_uid.is_some_and(|p| inside.contains(&p)) {
                inside.insert(org.uid);
            }
        }
        if inside.len() == before {
            return inside;
        }
    }
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

/// The organizations a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Provider roles see every organization.
    All,
    Organizations(HashSet<Uuid>),
}

impl Scope {
    pub fn contains(&self, organization: Uuid) -> bool {
        match self {
            Scope::All => true,
            Scope::Organizations(set) => set.contains(&organization),
        }
    }
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
        if self.role.organization_type() == OrganizationType::Provider {
            return Ok(Scope::All);
        }
        let orgs = state.store.organizations().await?;
        let seen = subtree(&orgs, self.organization_uid);
        Ok(Scope::Organizations(seen))
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
    // An access token from /token, or else an API key (sent the same way).
    let (user_uid, read_only) = match state
        .store
        .token(&digest)
        .await?
        .filter(|t| t.kind == TokenKind::Access)
    {
        Some(record) if record.expires_at <= now => {
            return Err(ApiError::unauthorized("The access token has expired."))
        }
        Some(record) => (record.user_uid, record.read_only),
        None => match state.store.api_key(&digest).await? {
            Some(key) => (key.user_uid, key.read_only),
            None => return Err(ApiError::unauthorized("The access token is not valid.")),
        },
    };
    let user = state
        .store
        .user(user_uid)
        .await?
        .filter(|u| u.enabled)
        .ok_or_else(|| ApiError::unauthorized("The user of this token is disabled or gone."))?;
    Ok(Caller {
        user_uid: user.uid,
        name: user.name,
        role: user.role,
        organization_uid: user.organization_uid,
        read_only,
    })
}

/// A new API key: 48 random bytes, base64url (no dots, so it never looks like a JWT).
pub fn new_api_key() -> String {
    let mut bytes = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
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

/// Token lifetimes and the login throttle.
pub fn default_access_ttl() -> Duration {
    Duration::seconds(3600)
}

pub fn default_refresh_ttl() -> Duration {
    Duration::hours(48)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not-a-hash"));
    }

    #[test]
    fn verification_with_reused_memory_agrees_with_the_library() {
        let h = hash_password("correct horse").unwrap();
        let mut memory = Vec::new();
        assert!(verify_password_with_memory(
            "correct horse",
            &h,
            &mut memory
        ));
        assert!(!verify_password_with_memory("wrong horse", &h, &mut memory));
        assert!(!verify_password_with_memory(
            "correct horse",
            "not-a-hash",
            &mut memory
        ));
        let cut = &h[..h.len() - 4];
        assert!(!verify_password_with_memory(
            "correct horse",
            cut,
            &mut memory
        ));
        assert_eq!(
            memory.len(),
            19 * 1024,
            "argon2's default m_cost, in 1 KiB blocks"
        );
    }

    #[tokio::test]
    async fn the_hash_gate_refuses_when_no_slot_frees_in_time() {
        let gate = HashGate::new(1, StdDuration::from_millis(50));
        let held = gate.permits.clone().acquire_owned().await.unwrap();
        assert!(gate.verify("x", dummy_hash()).await.is_err());
        drop(held);
        assert_eq!(gate.verify("x", dummy_hash()).await.ok(), Some(false));
    }

    #[test]
    fn tokens_are_random_and_digests_stable() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_digest(&a), token_digest(&a));
        assert_eq!(token_digest(&a).len(), 64);
        assert_ne!(token_digest(&a), token_digest(&b));
    }

    #[test]
    fn scope_membership() {
        let a = Uuid::new_v4();
        assert!(Scope::All.contains(a));
        assert!(Scope::Organizations(HashSet::from([a])).contains(a));
        assert!(!Scope::Organizations(HashSet::new()).contains(a));
    }
}

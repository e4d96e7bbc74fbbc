//! Credentials at rest: argon2id password hashes, and random bearer tokens and API keys of
//! which the store keeps only a SHA-256 digest.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

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

/// A new API key: 48 random bytes, base64url (no dots, so it never looks like a JWT).
pub fn new_api_key() -> String {
    let mut bytes = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
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
}

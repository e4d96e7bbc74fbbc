//! Issuer keys: the Ed25519 signing key a license issuer holds, its public half that servers
//! trust, the key id that names a public key, key files, and the set of trusted keys.
//!
//! Key files are plain PEM so ordinary tools read them: the signing key is PKCS#8
//! (`-----BEGIN PRIVATE KEY-----`, the same bytes `openssl genpkey -algorithm ed25519` writes),
//! the public key is SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`).
//!
//! The key id is the PASERK `k4.pid` of the public key, so any PASERK implementation derives the
//! same id: `"k4.pid." + base64url(BLAKE2b-264("k4.pid." + "k4.public." + base64url(pk)))`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use blake2::digest::{Update as _, VariableOutput as _};
use blake2::Blake2bVar;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _, EncodePublicKey as _,
    KeypairBytes,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::OsRng;

/// Prefix of every key id.
pub const KEY_ID_PREFIX: &str = "k4.pid.";
/// Length of a key id: the prefix plus 44 base64url characters (33 hash bytes).
pub const KEY_ID_LEN: usize = KEY_ID_PREFIX.len() + 44;

/// Suffix appended to a signing-key path to name its public key file.
pub const PUBLIC_KEY_SUFFIX: &str = ".pub";

/// Why a key could not be read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file (or directory) could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The text is not a key of the expected kind.
    #[error("{0}")]
    Invalid(String),
    /// A key read from a file was not a key of the expected kind.
    #[error("{}: {message}", path.display())]
    InvalidFile {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

impl KeyError {
    fn in_file(self, path: &Path) -> Self {
        match self {
            KeyError::Invalid(message) => KeyError::InvalidFile {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        }
    }
}

/// Derives the key id (`k4.pid.…`) of an Ed25519 public key.
pub fn key_id_for(public: &[u8; 32]) -> String {
    let paserk = format!("k4.public.{}", URL_SAFE_NO_PAD.encode(public));
    // 33 is a valid BLAKE2b output length, so `new` cannot fail; keep the fallback total anyway.
    let mut digest = [0u8; 33];
    if let Ok(mut hasher) = Blake2bVar::new(digest.len()) {
        hasher.update(KEY_ID_PREFIX.as_bytes());
        hasher.update(paserk.as_bytes());
        let _ = hasher.finalize_variable(&mut digest);
    }
    format!("{KEY_ID_PREFIX}{}", URL_SAFE_NO_PAD.encode(digest))
}

/// Whether `s` has the shape of a key id (it may still name no key anyone trusts).
pub fn looks_like_key_id(s: &str) -> bool {
    s.len() == KEY_ID_LEN
        && s.starts_with(KEY_ID_PREFIX)
        && s[KEY_ID_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The path of the public key file that belongs to the signing key at `path` (`FILE.pub`).
pub fn public_key_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(PUBLIC_KEY_SUFFIX);
    PathBuf::from(name)
}

fn strip_text(s: &str) -> &str {
    s.trim_start_matches('\u{feff}').trim()
}

fn pem_label(s: &str) -> Option<&str> {
    let line = s.lines().find(|l| l.trim().starts_with("-----BEGIN "))?;
    line.trim()
        .strip_prefix("-----BEGIN ")?
        .strip_suffix("-----")
}

fn read_text(path: &Path) -> Result<String, KeyError> {
    fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// An issuer's secret signing key. Whoever holds it can mint licenses that every server trusting
/// its public key accepts, so it never leaves the issuer; `Debug` does not show it.
#[derive(Clone)]
pub struct IssuerKey {
    signing: SigningKey,
    public: IssuerPublicKey,
}

impl IssuerKey {
    /// Creates a new random key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self::from_signing_key(SigningKey::generate(&mut OsRng))
    }

    /// Builds a key from its 32-byte Ed25519 seed. Meant for tests and key import; use
    /// [`IssuerKey::generate`] for new keys.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_signing_key(SigningKey::from_bytes(seed))
    }

    fn from_signing_key(signing: SigningKey) -> Self {
        let verifying = signing.verifying_key();
        let public = IssuerPublicKey::from_verifying_key(verifying);
        IssuerKey { signing, public }
    }

    /// The id of this key's public half (`k4.pid.…`), written into every license it signs.
    pub fn key_id(&self) -> &str {
        self.public.key_id()
    }

    /// The public half, to hand to servers that should trust this issuer.
    pub fn public(&self) -> IssuerPublicKey {
        self.public.clone()
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The key as PKCS#8 v1 PEM (`-----BEGIN PRIVATE KEY-----`), readable by OpenSSL.
    pub fn to_pem(&self) -> String {
        let bytes = KeypairBytes {
            secret_key: self.signing.to_bytes(),
            public_key: None,
        };
        match bytes.to_pkcs8_pem(LineEnding::LF) {
            Ok(pem) => pem.to_string(),
            // Encoding a fixed-size Ed25519 key into PKCS#8 has no failure path in practice.
            Err(e) => unreachable!("PKCS#8 encoding of an Ed25519 key failed: {e}"),
        }
    }

    /// Reads a PKCS#8 PEM Ed25519 private key (v1, or v2 with a matching public key).
    pub fn from_pem(s: &str) -> Result<Self, KeyError> {
        let s = strip_text(s);
        match pem_label(s) {
            Some("PRIVATE KEY") => {}
            Some("PUBLIC KEY") => {
                return Err(KeyError::Invalid(
                    "this is a public key; signing needs the issuer's private key \
                     (the key file without the .pub suffix)"
                        .into(),
                ))
            }
            Some(other) => {
                return Err(KeyError::Invalid(format!(
                    "expected an Ed25519 private key (-----BEGIN PRIVATE KEY-----), found a PEM \
                     \"{other}\" block"
                )))
            }
            None => {
                return Err(KeyError::Invalid(
                    "not a PEM key: expected -----BEGIN PRIVATE KEY----- \
                     (as written by `tallyman keygen`)"
                        .into(),
                ))
            }
        }
        let signing = SigningKey::from_pkcs8_pem(s).map_err(|e| {
            KeyError::Invalid(format!("not an Ed25519 private key in PKCS#8 PEM: {e}"))
        })?;
        Ok(Self::from_signing_key(signing))
    }

    /// Writes the signing key to `path` (mode 0600 on Unix) and the public key to `path.pub`
    /// (mode 0644). Refuses to overwrite either file, so an existing issuer key is never lost.
    pub fn write_files(&self, path: &Path) -> io::Result<()> {
        let pub_path = public_key_path(path);
        for p in [path, pub_path.as_path()] {
            if p.exists() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} already exists; refusing to overwrite it", p.display()),
                ));
            }
        }
        write_new(path, self.to_pem().as_bytes(), 0o600)?;
        if let Err(e) = write_new(&pub_path, self.public.to_pem().as_bytes(), 0o644) {
            // Leave no half-written key pair behind.
            let _ = fs::remove_file(path);
            return Err(e);
        }
        Ok(())
    }

    /// Reads a signing key file written by [`IssuerKey::write_files`] (or by OpenSSL).
    pub fn read_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        Self::from_pem(&read_text(path)?).map_err(|e| e.in_file(path))
    }
}

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerKey")
            .field("key_id", &self.key_id())
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// An issuer's public key and its key id. Servers hold these to decide which licenses to accept.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuerPublicKey {
    verifying: VerifyingKey,
    key_id: String,
}

impl IssuerPublicKey {
    fn from_verifying_key(verifying: VerifyingKey) -> Self {
        let key_id = key_id_for(verifying.as_bytes());
        IssuerPublicKey { verifying, key_id }
    }

    /// Builds a public key from its 32 raw bytes. Rejects bytes that are not a point on the
    /// curve and small-order ("weak") keys, for which forgeries are possible.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let verifying = VerifyingKey::from_bytes(bytes)
            .map_err(|_| KeyError::Invalid("not a valid Ed25519 public key".into()))?;
        Self::checked(verifying)
    }

    fn checked(verifying: VerifyingKey) -> Result<Self, KeyError> {
        if verifying.is_weak() {
            return Err(KeyError::Invalid(
                "the Ed25519 public key is a weak (small-order) key and cannot be trusted".into(),
            ));
        }
        Ok(Self::from_verifying_key(verifying))
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.verifying.as_bytes()
    }

    /// The key id (`k4.pid.…`).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key as a PASERK `k4.public.…` string.
    pub fn to_paserk(&self) -> String {
        format!("k4.public.{}", URL_SAFE_NO_PAD.encode(self.as_bytes()))
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    /// The key as SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_pem(&self) -> String {
        match self.verifying.to_public_key_pem(LineEnding::LF) {
            Ok(pem) => pem,
            Err(e) => unreachable!("SPKI encoding of an Ed25519 key failed: {e}"),
        }
    }

    /// Reads a SubjectPublicKeyInfo PEM Ed25519 public key.
    pub fn from_pem(s: &str) -> Result<Self, KeyError> {
        let s = strip_text(s);
        match pem_label(s) {
            Some("PUBLIC KEY") => {}
            Some("PRIVATE KEY") => {
                return Err(KeyError::Invalid(
                    "this is a private (signing) key; servers need only the public key \
                     (the .pub file). Keep the private key with the issuer"
                        .into(),
                ))
            }
            Some(other) => {
                return Err(KeyError::Invalid(format!(
                    "expected an Ed25519 public key (-----BEGIN PUBLIC KEY-----), found a PEM \
                     \"{other}\" block"
                )))
            }
            None => {
                return Err(KeyError::Invalid(
                    "not a PEM key: expected -----BEGIN PUBLIC KEY----- \
                     (the .pub file written by `tallyman keygen`)"
                        .into(),
                ))
            }
        }
        let verifying = VerifyingKey::from_public_key_pem(s)
            .map_err(|e| KeyError::Invalid(format!("not an Ed25519 public key in PEM: {e}")))?;
        Self::checked(verifying)
    }

    /// Reads a public key file (`FILE.pub`).
    pub fn read_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        Self::from_pem(&read_text(path)?).map_err(|e| e.in_file(path))
    }
}

impl fmt::Debug for IssuerPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerPublicKey")
            .field("key_id", &self.key_id)
            .field("public", &self.to_paserk())
            .finish()
    }
}

/// The issuer public keys a server accepts licenses from, looked up by key id.
///
/// Several keys may be trusted at once, which is how keys rotate: add the new key, issue with it,
/// and drop the old one once no license signed by it is still in use.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    keys: BTreeMap<String, IssuerPublicKey>,
}

impl TrustStore {
    /// An empty store (trusts nobody).
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `key`. Adding the same key twice keeps one copy.
    pub fn add(&mut self, key: IssuerPublicKey) {
        self.keys.insert(key.key_id.clone(), key);
    }

    /// Number of distinct trusted keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The trusted key with this id, if any.
    pub fn get(&self, key_id: &str) -> Option<&IssuerPublicKey> {
        self.keys.get(key_id)
    }

    /// The ids of all trusted keys, sorted.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Trusts every `*.pub` file in `dir` (not recursive) and returns how many files were read.
    /// Fails on the first unreadable or invalid `.pub` file, naming it, rather than silently
    /// trusting fewer keys than the operator put there.
    pub fn load_dir(&mut self, dir: &Path) -> Result<usize, KeyError> {
        let io_err = |source| KeyError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err)? {
            let path = entry.map_err(io_err)?.path();
            let is_pub = path.extension().is_some_and(|e| e == "pub");
            if is_pub && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        for path in &paths {
            self.add(IssuerPublicKey::read_file(path)?);
        }
        Ok(paths.len())
    }
}

impl FromIterator<IssuerPublicKey> for TrustStore {
    fn from_iter<I: IntoIterator<Item = IssuerPublicKey>>(iter: I) -> Self {
        let mut store = TrustStore::new();
        for key in iter {
            store.add(key);
        }
        store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        let v: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
            .collect();
        v.try_into().expect("32 bytes")
    }

    #[test]
    fn key_id_matches_official_paserk_vectors() {
        // paseto-standard/test-vectors, PASERK/k4.pid.json
        let cases = [
            (
                "0000000000000000000000000000000000000000000000000000000000000000",
                "k4.pid.S_XQmeEwHbbvRmiyfXfHYpLGjXGzjTRSDoT1YtTakWFE",
            ),
            (
                "707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f",
                "k4.pid.9ShR3xc8-qVJ_di0tc9nx0IDIqbatdeM2mqLFBJsKRHs",
            ),
            (
                "707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e90",
                "k4.pid.-nyvbaTz8U6TQz7OZWW-iB3va31iAxIpUgzUcVQVmW9A",
            ),
        ];
        for (key, id) in cases {
            assert_eq!(key_id_for(&hex32(key)), id);
            assert!(looks_like_key_id(id));
        }
        assert!(!looks_like_key_id("k4.pid.short"));
        assert!(!looks_like_key_id(
            "k3.pid.S_XQmeEwHbbvRmiyfXfHYpLGjXGzjTRSDoT1YtTakWFE"
        ));
    }

    // The key pair of the official PASETO vectors 4-S-*, with the PEM forms given there.
    const VECTOR_SEED: &str = "b4cbfb43df4ce210727d953e4a713307fa19bb7d9f85041438d9e11b942a3774";
    const VECTOR_SECRET_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEILTL+0PfTOIQcn2VPkpxMwf6Gbt9n4UEFDjZ4RuUKjd0\n-----END PRIVATE KEY-----\n";
    const VECTOR_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAHrnbu7wEfAP9cGBOAHHwmH4Wsot1ciXBHwBBXQ4gsaI=\n-----END PUBLIC KEY-----\n";

    #[test]
    fn pem_encoding_matches_the_standard_forms() {
        let key = IssuerKey::from_seed(&hex32(VECTOR_SEED));
        assert_eq!(key.to_pem(), VECTOR_SECRET_PEM);
        assert_eq!(key.public().to_pem(), VECTOR_PUBLIC_PEM);
        let parsed = IssuerKey::from_pem(VECTOR_SECRET_PEM).expect("secret pem");
        assert_eq!(parsed.key_id(), key.key_id());
        let public = IssuerPublicKey::from_pem(VECTOR_PUBLIC_PEM).expect("public pem");
        assert_eq!(public, key.public());
    }

    #[test]
    fn pem_round_trip_of_a_generated_key() {
        let key = IssuerKey::generate();
        let again = IssuerKey::from_pem(&key.to_pem()).expect("round trip");
        assert_eq!(again.key_id(), key.key_id());
        assert_eq!(again.signing_key().to_bytes(), key.signing_key().to_bytes());
        let public = IssuerPublicKey::from_pem(&key.public().to_pem()).expect("public");
        assert_eq!(public, key.public());
        assert_eq!(public.key_id(), key.key_id());
        assert!(looks_like_key_id(key.key_id()));
    }

    #[test]
    fn pem_tolerates_bom_and_crlf() {
        let crlf = format!("\u{feff}{}", VECTOR_PUBLIC_PEM.replace('\n', "\r\n"));
        assert!(IssuerPublicKey::from_pem(&crlf).is_ok());
        let crlf = format!("\u{feff}  {}  ", VECTOR_SECRET_PEM.replace('\n', "\r\n"));
        assert!(IssuerKey::from_pem(&crlf).is_ok());
    }

    #[test]
    fn pem_kind_mismatch_is_explained() {
        let err = IssuerKey::from_pem(VECTOR_PUBLIC_PEM).expect_err("public as secret");
        assert!(err.to_string().contains("public key"), "{err}");
        let err = IssuerPublicKey::from_pem(VECTOR_SECRET_PEM).expect_err("secret as public");
        assert!(err.to_string().contains("private"), "{err}");
        assert!(IssuerKey::from_pem("garbage").is_err());
        assert!(IssuerPublicKey::from_pem(
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        )
        .is_err());
    }

    #[test]
    fn weak_public_keys_are_refused() {
        // The identity point (small order) encodes as 0x01 followed by zeros.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(IssuerPublicKey::from_bytes(&identity).is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let key = IssuerKey::from_seed(&hex32(VECTOR_SEED));
        let shown = format!("{key:?} {key:#?}");
        assert!(shown.contains(key.key_id()));
        assert!(shown.contains("redacted"));
        let pem_body = VECTOR_SECRET_PEM.lines().nth(1).expect("body");
        for needle in [VECTOR_SEED, "b4cbfb43", "180, 203, 251", pem_body] {
            assert!(!shown.contains(needle), "Debug leaked {needle}: {shown}");
        }
    }

    #[test]
    fn write_and_read_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("issuer.key");
        let key = IssuerKey::generate();
        key.write_files(&path).expect("write");
        let pub_path = dir.path().join("issuer.key.pub");
        assert_eq!(public_key_path(&path), pub_path);

        let read = IssuerKey::read_file(&path).expect("read secret");
        assert_eq!(read.key_id(), key.key_id());
        let public = IssuerPublicKey::read_file(&pub_path).expect("read public");
        assert_eq!(public, key.public());

        let again = key.write_files(&path).expect_err("no overwrite");
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            IssuerKey::read_file(&path).expect("kept").key_id(),
            key.key_id()
        );

        let err = IssuerKey::read_file(&pub_path).expect_err("pub is not a secret");
        assert!(err.to_string().contains("issuer.key.pub"), "{err}");
        assert!(matches!(
            IssuerKey::read_file(dir.path().join("missing")),
            Err(KeyError::Io { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn secret_key_file_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        IssuerKey::generate().write_files(&path).expect("write");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let pub_mode = fs::metadata(public_key_path(&path))
            .expect("meta")
            .permissions()
            .mode()
            & 0o077;
        assert_eq!(
            pub_mode & 0o022,
            0,
            "public key must not be group/world writable"
        );
    }

    #[test]
    fn trust_store_loads_pub_files_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = IssuerKey::generate();
        let b = IssuerKey::generate();
        a.write_files(&dir.path().join("a")).expect("a");
        b.write_files(&dir.path().join("b")).expect("b");
        fs::write(dir.path().join("notes.txt"), "not a key").expect("notes");

        let mut store = TrustStore::new();
        assert!(store.is_empty());
        assert_eq!(store.load_dir(dir.path()).expect("load"), 2);
        assert_eq!(store.len(), 2);
        assert!(store.get(a.key_id()).is_some());
        assert!(store.get(b.key_id()).is_some());
        store.add(a.public());
        assert_eq!(store.len(), 2, "same key twice is one key");

        fs::write(dir.path().join("broken.pub"), "nope").expect("broken");
        let err = TrustStore::new().load_dir(dir.path()).expect_err("broken");
        assert!(err.to_string().contains("broken.pub"), "{err}");
        assert!(TrustStore::new()
            .load_dir(&dir.path().join("absent"))
            .is_err());
    }
}

//! Keys and authenticated encryption.
//!
//! A repository has one random [`MasterKey`]: a data key (XChaCha20-Poly1305) and an id key
//! (keyed BLAKE3 for chunk ids, so ids reveal nothing about content to whoever lacks the
//! key). The master key is stored only wrapped, in [`KeySlot`]s: each slot seals it with a
//! key derived from a password by Argon2id. Adding or removing a password touches one slot.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Format version byte in front of every sealed object.
const SEALED_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Bytes a sealed object starts with (format version, nonce), before its ciphertext.
pub const SEAL_HEADER: usize = 1 + NONCE_LEN;
/// Bytes sealing adds to a plaintext (header and authentication tag).
pub const SEAL_OVERHEAD: usize = SEAL_HEADER + TAG_LEN;

/// Why a key or an object could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The password does not open this key slot.
    #[error("wrong password (it opens no key slot of this repository)")]
    WrongPassword,
    /// An object failed authentication: altered, truncated, or sealed with another key.
    #[error("integrity check failed: {0} was altered, truncated or belongs to another repository")]
    Tampered(String),
    /// An object or slot is not in a format this version reads.
    #[error("unsupported format: {0}")]
    Unsupported(String),
    /// The OS random source failed.
    #[error("no randomness available: {0}")]
    Random(String),
}

fn random<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| CryptoError::Random(e.to_string()))?;
    Ok(bytes)
}

/// A chunk's id: keyed BLAKE3 of its plaintext.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    /// Lowercase hex, as used in object names.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId({})", &self.to_hex()[..16])
    }
}

/// The repository's secret keys. Never printed, never stored unwrapped.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    data: [u8; 32],
    id: [u8; 32],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A new random key.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self {
            data: random()?,
            id: random()?,
        })
    }

    /// The id of a chunk of plaintext.
    pub fn chunk_id(&self, plaintext: &[u8]) -> ChunkId {
        ChunkId(*blake3::keyed_hash(&self.id, plaintext).as_bytes())
    }

    /// Encrypts and authenticates `plaintext`; `context` (the object's role and name) is
    /// authenticated too, so a sealed object cannot be passed off as another.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.data, plaintext, context)
    }

    /// Seals in place, without copying: `buffer` holds [`SEAL_HEADER`] bytes of room, then
    /// the plaintext; it becomes the sealed object (what [`MasterKey::seal`] returns).
    pub fn seal_in_place(&self, buffer: &mut Vec<u8>, context: &[u8]) -> Result<(), CryptoError> {
        seal_in_place_with(&self.data, buffer, context)
    }

    /// Decrypts and verifies what [`MasterKey::seal`] produced with the same `context`.
    pub fn open(&self, sealed: &[u8], context: &[u8], what: &str) -> Result<Vec<u8>, CryptoError> {
        open_with(&self.data, sealed, context, what)
    }

    /// [`MasterKey::open`] over the sealed bytes themselves (no copy): returns the
    /// plaintext, the part of `sealed` between the header and the tag.
    pub fn open_in_place<'a>(
        &self,
        sealed: &'a mut [u8],
        context: &[u8],
        what: &str,
    ) -> Result<&'a mut [u8], CryptoError> {
        check_sealed(sealed, what)?;
        let (nonce, ciphertext) = sealed[1..].split_at_mut(NONCE_LEN);
        let (ciphertext, tag) = ciphertext.split_at_mut(ciphertext.len() - TAG_LEN);
        XChaCha20Poly1305::new((&self.data).into())
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                context,
                ciphertext,
                (&*tag).into(),
            )
            .map_err(|_| CryptoError::Tampered(what.to_owned()))?;
        Ok(ciphertext)
    }

    fn to_bytes(&self) -> [u8; 64] {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&self.data);
        bytes[32..].copy_from_slice(&self.id);
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 64 {
            return Err(CryptoError::Unsupported(format!(
                "master key of {} bytes",
                bytes.len()
            )));
        }
        let (data, id) = bytes.split_at(32);
        Ok(Self {
            data: data.try_into().expect("32 bytes"),
            id: id.try_into().expect("32 bytes"),
        })
    }
}

fn seal_with(key: &[u8; 32], plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut sealed = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
    sealed.resize(SEAL_HEADER, 0);
    sealed.extend_from_slice(plaintext);
    seal_in_place_with(key, &mut sealed, context)?;
    Ok(sealed)
}

/// The next nonce of this thread: a random prefix drawn once per thread, then a counter.
/// Unique like a random nonce (prefixes of 128 random bits do not meet), without a system
/// call per sealed object (one per blob: tens of thousands for a tree of small files).
fn next_nonce() -> Result<[u8; NONCE_LEN], CryptoError> {
    const PREFIX: usize = NONCE_LEN - 8;
    thread_local! {
        static NONCES: std::cell::Cell<Option<([u8; PREFIX], u64)>> =
            const { std::cell::Cell::new(None) };
    }
    let (prefix, counter) = match NONCES.get() {
        Some(state) => state,
        None => (random::<PREFIX>()?, 0),
    };
    NONCES.set(Some((prefix, counter + 1)));
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..PREFIX].copy_from_slice(&prefix);
    nonce[PREFIX..].copy_from_slice(&counter.to_le_bytes());
    Ok(nonce)
}

/// The sealed format: version, nonce, ciphertext, tag.
fn seal_in_place_with(
    key: &[u8; 32],
    buffer: &mut Vec<u8>,
    context: &[u8],
) -> Result<(), CryptoError> {
    let nonce = next_nonce()?;
    let (header, plaintext) = buffer.split_at_mut(SEAL_HEADER);
    header[0] = SEALED_VERSION;
    header[1..].copy_from_slice(&nonce);
    let tag = XChaCha20Poly1305::new(key.into())
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), context, plaintext)
        .map_err(|_| CryptoError::Unsupported("encryption failed".into()))?;
    buffer.extend_from_slice(&tag);
    Ok(())
}

fn open_with(
    key: &[u8; 32],
    sealed: &[u8],
    context: &[u8],
    what: &str,
) -> Result<Vec<u8>, CryptoError> {
    check_sealed(sealed, what)?;
    let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
    let (ciphertext, tag) = ciphertext.split_at(ciphertext.len() - TAG_LEN);
    let mut plaintext = ciphertext.to_vec();
    XChaCha20Poly1305::new(key.into())
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            context,
            &mut plaintext,
            tag.into(),
        )
        .map_err(|_| CryptoError::Tampered(what.to_owned()))?;
    Ok(plaintext)
}

/// Refuses what is too short to be sealed, or sealed in an unknown format version.
fn check_sealed(sealed: &[u8], what: &str) -> Result<(), CryptoError> {
    if sealed.len() < 1 + NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Tampered(what.to_owned()));
    }
    if sealed[0] != SEALED_VERSION {
        return Err(CryptoError::Unsupported(format!(
            "{what}: sealed format version {}",
            sealed[0]
        )));
    }
    Ok(())
}

/// Argon2id cost parameters of a key slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// The most memory a key slot may ask for (4 GiB).
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    /// The most passes a key slot may ask for.
    pub const MAX_ITERATIONS: u32 = 64;
    /// The most lanes a key slot may ask for.
    pub const MAX_PARALLELISM: u32 = 16;
    /// The cheapest costs (64 KiB, 1 pass, 1 lane): for tests and throwaway repositories,
    /// never for a password that protects data.
    pub const CHEAPEST: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    /// Refuses costs no machine should be made to pay (a slot read from storage is
    /// checked before any memory is taken for it).
    pub fn check(&self) -> Result<(), CryptoError> {
        let within = self.memory_kib <= Self::MAX_MEMORY_KIB
            && (1..=Self::MAX_ITERATIONS).contains(&self.iterations)
            && (1..=Self::MAX_PARALLELISM).contains(&self.parallelism);
        if within {
            Ok(())
        } else {
            Err(CryptoError::Unsupported(format!(
                "key derivation costs out of bounds ({} KiB, {} passes, {} lanes; at most {} KiB, {} passes, {} lanes)",
                self.memory_kib,
                self.iterations,
                self.parallelism,
                Self::MAX_MEMORY_KIB,
                Self::MAX_ITERATIONS,
                Self::MAX_PARALLELISM
            )))
        }
    }

    /// OWASP's minimum Argon2id configurations (memory in KiB, passes), one lane each.
    pub const OWASP_MINIMUM: [(u32, u32); 5] = [
        (47_104, 1),
        (19_456, 2),
        (12_288, 3),
        (9_216, 4),
        (7_168, 5),
    ];

    /// Refuses costs below OWASP's minimum for a new key slot (existing slots open whatever
    /// their costs, within [`KdfParams::check`]).
    pub fn check_new(&self) -> Result<(), CryptoError> {
        self.check()?;
        let strong = Self::OWASP_MINIMUM
            .iter()
            .any(|(memory, passes)| self.memory_kib >= *memory && self.iterations >= *passes);
        if strong {
            Ok(())
        } else {
            Err(CryptoError::Unsupported(format!(
                "key derivation costs below OWASP's minimum ({} KiB with {} passes; at least 46 MiB with 1 pass, 19 MiB with 2, 12 MiB with 3, 9 MiB with 4 or 7 MiB with 5)",
                self.memory_kib, self.iterations
            )))
        }
    }
}

impl Default for KdfParams {
    /// 46 MiB, 2 passes, 1 lane: twice the passes of OWASP's first Argon2id configuration
    /// (46 MiB, 1 pass), about 0.1-0.2 s for every open on a small machine. The memory is
    /// the peak of every short command (restic's scrypt is calibrated to at most 60 MiB).
    fn default() -> Self {
        Self {
            memory_kib: 46 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// The master key sealed under a password-derived key. Stored as JSON in `keys/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeySlot {
    /// Always `argon2id`.
    pub kdf: String,
    /// Its costs.
    pub params: KdfParams,
    /// Random salt, hex.
    pub salt: String,
    /// The sealed master key, hex.
    pub sealed_key: String,
}

/// What the key slot's seal authenticates besides the key.
const SLOT_CONTEXT: &[u8] = b"kbackup key slot v1";

fn derive(password: &[u8], salt: &[u8], params: KdfParams) -> Result<[u8; 32], CryptoError> {
    params.check()?;
    let params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .map_err(|e| CryptoError::Unsupported(format!("key slot parameters: {e}")))?;
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password, salt, &mut key)
        .map_err(|e| CryptoError::Unsupported(format!("key derivation: {e}")))?;
    Ok(key)
}

impl KeySlot {
    /// Seals `master` under `password`.
    pub fn create(
        master: &MasterKey,
        password: &[u8],
        params: KdfParams,
    ) -> Result<Self, CryptoError> {
        let salt: [u8; 16] = random()?;
        let kek = derive(password, &salt, params)?;
        let sealed = seal_with(&kek, &master.to_bytes(), SLOT_CONTEXT)?;
        Ok(Self {
            kdf: "argon2id".into(),
            params,
            salt: hex::encode(salt),
            sealed_key: hex::encode(sealed),
        })
    }

    /// Opens the slot; a wrong password is [`CryptoError::WrongPassword`].
    pub fn unlock(&self, password: &[u8]) -> Result<MasterKey, CryptoError> {
        if self.kdf != "argon2id" {
            return Err(CryptoError::Unsupported(format!(
                "key derivation '{}'",
                self.kdf
            )));
        }
        let salt = hex::decode(&self.salt)
            .map_err(|_| CryptoError::Unsupported("key slot salt".into()))?;
        let sealed = hex::decode(&self.sealed_key)
            .map_err(|_| CryptoError::Unsupported("key slot key".into()))?;
        let kek = derive(password, &salt, self.params)?;
        let bytes = open_with(&kek, &sealed, SLOT_CONTEXT, "key slot").map_err(|e| match e {
            CryptoError::Tampered(_) => CryptoError::WrongPassword,
            other => other,
        })?;
        MasterKey::from_bytes(&bytes)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn sealing_round_trips_and_binds_the_context() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"snapshot json", b"snapshots/abc").unwrap();
        assert_eq!(sealed.len(), 1 + 24 + 13 + 16);
        assert_eq!(
            key.open(&sealed, b"snapshots/abc", "snapshot abc").unwrap(),
            b"snapshot json"
        );
        let moved = key
            .open(&sealed, b"snapshots/def", "snapshot def")
            .unwrap_err();
        assert_eq!(
            moved,
            CryptoError::Tampered("snapshot def".into()),
            "an object renamed is detected"
        );
        let other = MasterKey::generate().unwrap();
        assert!(matches!(
            other.open(&sealed, b"snapshots/abc", "x"),
            Err(CryptoError::Tampered(_))
        ));
    }

    /// The layout is the AEAD's own (ciphertext then tag, after version and nonce): what the
    /// in-place sealing writes, the one-shot AEAD call opens, and the other way round.
    #[test]
    fn in_place_sealing_is_the_aead_layout() {
        use chacha20poly1305::aead::{Aead, Payload};
        let key = MasterKey::generate().unwrap();
        let cipher = XChaCha20Poly1305::new((&key.data).into());
        let sealed = key.seal(b"index json", b"index/1").unwrap();
        let payload = Payload {
            msg: &sealed[SEAL_HEADER..],
            aad: b"index/1",
        };
        let nonce = XNonce::from_slice(&sealed[1..SEAL_HEADER]);
        assert_eq!(cipher.decrypt(nonce, payload).unwrap(), b"index json");
        let ciphertext = cipher
            .encrypt(
                nonce,
                Payload {
                    msg: b"pack header",
                    aad: b"pack header",
                },
            )
            .unwrap();
        let one_shot = [&sealed[..SEAL_HEADER], &ciphertext].concat();
        assert_eq!(
            key.open(&one_shot, b"pack header", "header").unwrap(),
            b"pack header"
        );
    }

    #[test]
    fn every_flipped_byte_and_truncation_is_detected() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"0123456789abcdef", b"ctx").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                key.open(&bad, b"ctx", "object").is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
        assert!(matches!(
            key.open(&sealed[..sealed.len() - 1], b"ctx", "object"),
            Err(CryptoError::Tampered(_))
        ));
        assert!(matches!(
            key.open(&sealed[..10], b"ctx", "object"),
            Err(CryptoError::Tampered(_))
        ));
    }

    #[test]
    fn nonces_are_fresh() {
        let key = MasterKey::generate().unwrap();
        assert_ne!(
            key.seal(b"same", b"c").unwrap(),
            key.seal(b"same", b"c").unwrap()
        );
        // Within a thread and across threads: no nonce twice.
        let nonces = || (0..1000).map(|_| next_nonce().unwrap()).collect::<Vec<_>>();
        let mut all = nonces();
        all.extend(std::thread::spawn(nonces).join().unwrap());
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), 2000);
    }

    #[test]
    fn key_slots_open_with_the_password_only() {
        let master = MasterKey::generate().unwrap();
        let slot = KeySlot::create(&master, b"correct horse", KdfParams::CHEAPEST).unwrap();
        assert_eq!(slot.unlock(b"correct horse").unwrap(), master);
        assert_eq!(
            slot.unlock(b"wrong horse").unwrap_err(),
            CryptoError::WrongPassword
        );
        let json = serde_json::to_string(&slot).unwrap();
        assert!(!json.contains("correct horse"));
        let back: KeySlot = serde_json::from_str(&json).unwrap();
        assert_eq!(back.unlock(b"correct horse").unwrap(), master);
        let mut tampered = back.clone();
        tampered.params.iterations = 2;
        assert_eq!(
            tampered.unlock(b"correct horse").unwrap_err(),
            CryptoError::WrongPassword
        );
    }

    #[test]
    fn chunk_ids_are_keyed() {
        let (a, b) = (
            MasterKey::generate().unwrap(),
            MasterKey::generate().unwrap(),
        );
        assert_eq!(a.chunk_id(b"data"), a.chunk_id(b"data"));
        assert_ne!(
            a.chunk_id(b"data"),
            b.chunk_id(b"data"),
            "ids reveal nothing without the key"
        );
        assert_eq!(a.chunk_id(b"data").to_hex().len(), 64);
        assert!(!format!("{a:?}").contains(&hex::encode(a.data)));
    }
}

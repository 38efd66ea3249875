//! The ES256 client secret of Apple's OAuth client-credentials flow: a JWT with header
//! `{"alg":"ES256","kid":<key id>}` and claims `sub` = client id, `iss` = team id,
//! `aud` = `https://appleid.apple.com`, `iat`, `exp` (at most 180 days later), signed with the
//! P-256 private key whose public half was uploaded to Apple Ads.
//!
//! Apple's instructions make the key with `openssl ecparam -genkey -name prime256v1 -noout`,
//! which writes a SEC 1 `EC PRIVATE KEY` PEM; a PKCS#8 `PRIVATE KEY` PEM is accepted too.
//! Signing uses `ring`, already in the build through rustls; the two small DER structures are
//! read here. The local server verifies secrets with [`verify_client_secret`].

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};

/// The audience Apple expects in the client secret.
pub const AUDIENCE: &str = "https://appleid.apple.com";

/// Apple accepts client secrets valid for at most 180 days.
pub const LONGEST_LIFE: chrono::TimeDelta = chrono::TimeDelta::days(180);

/// How long the secrets we sign stay valid: each token request signs a fresh one, so a short
/// life limits what a leaked secret is worth.
const LIFE: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// DER encoding of the prime256v1 (P-256) curve OID, 1.2.840.10045.3.1.7.
const P256_OID: [u8; 8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

/// Why a key or a secret was refused. Messages never include key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

fn bad(m: impl Into<String>) -> KeyError {
    KeyError(m.into())
}

/// Reads one DER element: (tag, contents, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 2 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, b| (a << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The base64 body of a PEM block and its label (`EC PRIVATE KEY`, `PUBLIC KEY`...).
fn pem(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    let text = text.trim();
    let begin = text
        .find("-----BEGIN ")
        .ok_or_else(|| bad("not a PEM block (no -----BEGIN line)"))?;
    let after = &text[begin + 11..];
    let label_end = after
        .find("-----")
        .ok_or_else(|| bad("the PEM BEGIN line is not closed"))?;
    let label = after[..label_end].to_string();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let body_end = after
        .find(&end_marker)
        .ok_or_else(|| bad(format!("the PEM block has no {end_marker} line")))?;
    let b64: String = after[body_start..body_end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = STANDARD
        .decode(b64)
        .map_err(|_| bad(format!("the {label} PEM body is not base64")))?;
    Ok((label, bytes))
}

/// The uncompressed P-256 point in a SubjectPublicKeyInfo (`PUBLIC KEY`) or the public part
/// of a SEC 1 key.
fn bit_string_point(bits: &[u8]) -> Result<Vec<u8>, KeyError> {
    match bits.split_first() {
        Some((0, point)) if point.len() == 65 && point[0] == 4 => Ok(point.to_vec()),
        _ => Err(bad("the public key is not an uncompressed P-256 point")),
    }
}

/// Builds a signing key from a SEC 1 `ECPrivateKey`: version 1, the 32-byte private scalar,
/// optional `[0]` curve (must be P-256) and the `[1]` public key ring needs.
fn sec1_key(doc: &[u8], rng: &SystemRandom) -> Result<EcdsaKeyPair, KeyError> {
    let malformed = || bad("the EC PRIVATE KEY is not a valid SEC 1 structure");
    let (tag, seq, _) = der(doc).ok_or_else(malformed)?;
    if tag != 0x30 {
        return Err(malformed());
    }
    let (tag, version, rest) = der(seq).ok_or_else(malformed)?;
    if tag != 0x02 || version != [1] {
        return Err(malformed());
    }
    let (tag, scalar, mut rest) = der(rest).ok_or_else(malformed)?;
    if tag != 0x04 || scalar.len() > 32 {
        return Err(malformed());
    }
    let mut private = vec![0u8; 32 - scalar.len()];
    private.extend_from_slice(scalar);
    let mut public = None;
    while !rest.is_empty() {
        let (tag, inner, next) = der(rest).ok_or_else(malformed)?;
        match tag {
            0xA0 => {
                let (t, oid, _) = der(inner).ok_or_else(malformed)?;
                if t != 0x06 || oid != P256_OID {
                    return Err(bad("the key is not on the P-256 (prime256v1) curve"));
                }
            }
            0xA1 => {
                let (t, bits, _) = der(inner).ok_or_else(malformed)?;
                if t != 0x03 {
                    return Err(malformed());
                }
                public = Some(bit_string_point(bits)?);
            }
            _ => {}
        }
        rest = next;
    }
    let public = public.ok_or_else(|| {
        bad("the EC PRIVATE KEY has no public part; convert it with `openssl pkcs8 -topk8 -nocrypt`")
    })?;
    EcdsaKeyPair::from_private_key_and_public_key(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &private,
        &public,
        rng,
    )
    .map_err(|e| bad(format!("the EC private key was refused: {e}")))
}

/// Reads a P-256 private key PEM (SEC 1 or PKCS#8).
fn signing_key(pem_text: &str, rng: &SystemRandom) -> Result<EcdsaKeyPair, KeyError> {
    let (label, doc) = pem(pem_text)?;
    match label.as_str() {
        "EC PRIVATE KEY" => sec1_key(&doc, rng),
        "PRIVATE KEY" => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &doc, rng)
            .map_err(|e| bad(format!("the PKCS#8 key is not a P-256 EC key: {e}"))),
        other => Err(bad(format!(
            "expected an EC PRIVATE KEY or PRIVATE KEY PEM, found {other}"
        ))),
    }
}

/// The uncompressed point of a `PUBLIC KEY` PEM (SubjectPublicKeyInfo of a P-256 key).
pub fn public_key_point(pem_text: &str) -> Result<Vec<u8>, KeyError> {
    let (label, doc) = pem(pem_text)?;
    if label != "PUBLIC KEY" {
        return Err(bad(format!("expected a PUBLIC KEY PEM, found {label}")));
    }
    let malformed = || bad("the PUBLIC KEY is not a valid SubjectPublicKeyInfo");
    let (_, spki, _) = der(&doc).ok_or_else(malformed)?;
    let (_, algorithm, rest) = der(spki).ok_or_else(malformed)?;
    let (_, _ec_oid, params) = der(algorithm).ok_or_else(malformed)?;
    let (_, curve, _) = der(params).ok_or_else(malformed)?;
    if curve != P256_OID {
        return Err(bad("the public key is not on the P-256 curve"));
    }
    let (tag, bits, _) = der(rest).ok_or_else(malformed)?;
    if tag != 0x03 {
        return Err(malformed());
    }
    bit_string_point(bits)
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    kid: String,
}

/// The claims of a client secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// Signs client secrets for one API client. Holds the key, never prints it.
pub struct ClientSecretSigner {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    client_id: String,
    team_id: String,
    key_id: String,
}

impl std::fmt::Debug for ClientSecretSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecretSigner(***)")
    }
}

impl ClientSecretSigner {
    pub fn new(
        private_key_pem: &str,
        client_id: &str,
        team_id: &str,
        key_id: &str,
    ) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let key = signing_key(private_key_pem, &rng)?;
        Ok(ClientSecretSigner {
            key,
            rng,
            client_id: client_id.to_string(),
            team_id: team_id.to_string(),
            key_id: key_id.to_string(),
        })
    }

    /// A client secret valid from `now` for an hour.
    pub fn client_secret(&self, now: DateTime<Utc>) -> Result<String, KeyError> {
        let header = Header {
            alg: "ES256".into(),
            kid: self.key_id.clone(),
        };
        let claims = Claims {
            sub: self.client_id.clone(),
            iss: self.team_id.clone(),
            aud: AUDIENCE.into(),
            iat: now.timestamp(),
            exp: (now + LIFE).timestamp(),
        };
        let json = |r: serde_json::Result<Vec<u8>>| {
            r.map(|b| URL_SAFE_NO_PAD.encode(b))
                .map_err(|_| bad("writing the client secret failed"))
        };
        let input = format!(
            "{}.{}",
            json(serde_json::to_vec(&header))?,
            json(serde_json::to_vec(&claims))?
        );
        let signature = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| bad("signing the client secret failed"))?;
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

/// Checks a client secret as Apple's token endpoint does: ES256 signature by `public_point`,
/// `kid`, audience, and a life that has begun, not ended, and spans at most 180 days.
/// Returns the claims.
pub fn verify_client_secret(
    jwt: &str,
    public_point: &[u8],
    key_id: &str,
    now: DateTime<Utc>,
) -> Result<Claims, KeyError> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("the client secret is not a JWT of three parts"));
    };
    let decode = |p: &str| {
        URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| bad("a JWT part is not base64url"))
    };
    let header: Header = serde_json::from_slice(&decode(h)?)
        .map_err(|_| bad("the JWT header is not the expected JSON"))?;
    if header.alg != "ES256" {
        return Err(bad(format!("alg is {}, not ES256", header.alg)));
    }
    if header.kid != key_id {
        return Err(bad("kid names another key"));
    }
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_point)
        .verify(format!("{h}.{c}").as_bytes(), &decode(s)?)
        .map_err(|_| bad("the signature does not verify"))?;
    let claims: Claims = serde_json::from_slice(&decode(c)?)
        .map_err(|_| bad("the JWT claims are not the expected JSON"))?;
    let t = now.timestamp();
    if claims.aud != AUDIENCE {
        return Err(bad(format!("aud is {:?}", claims.aud)));
    }
    if claims.iat > t + 60 {
        return Err(bad("iat is in the future"));
    }
    if claims.exp <= t {
        return Err(bad("the client secret has expired"));
    }
    if claims.exp - claims.iat > LONGEST_LIFE.num_seconds() {
        return Err(bad("the client secret is valid for more than 180 days"));
    }
    Ok(claims)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sim::server::credentials::{
        APPLE_CLIENT_ID, APPLE_KEY_ID, APPLE_PRIVATE_KEY_PEM, APPLE_PUBLIC_KEY_PEM, APPLE_TEAM_ID,
    };

    fn now() -> DateTime<Utc> {
        "2026-01-03T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_signed_secret_verifies_with_the_public_key_and_carries_the_claims() {
        let signer = ClientSecretSigner::new(
            APPLE_PRIVATE_KEY_PEM,
            APPLE_CLIENT_ID,
            APPLE_TEAM_ID,
            APPLE_KEY_ID,
        )
        .unwrap();
        let jwt = signer.client_secret(now()).unwrap();
        let point = public_key_point(APPLE_PUBLIC_KEY_PEM).unwrap();
        let claims = verify_client_secret(&jwt, &point, APPLE_KEY_ID, now()).unwrap();
        assert_eq!(claims.sub, APPLE_CLIENT_ID);
        assert_eq!(claims.iss, APPLE_TEAM_ID);
        assert_eq!(claims.aud, AUDIENCE);
        assert_eq!(claims.exp - claims.iat, 3600);
        // The header is exactly what Apple documents.
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jwt.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            header,
            serde_json::json!({"alg": "ES256", "kid": APPLE_KEY_ID})
        );

        // Expired, tampered, or another key id: refused.
        let later = now() + chrono::TimeDelta::hours(2);
        assert!(verify_client_secret(&jwt, &point, APPLE_KEY_ID, later).is_err());
        assert!(verify_client_secret(&jwt, &point, "OTHERKEY", now()).is_err());
        let mut parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
        let forged = Claims {
            sub: "SEARCHADS.someone-else".into(),
            ..claims
        };
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let e = verify_client_secret(&parts.join("."), &point, APPLE_KEY_ID, now()).unwrap_err();
        assert!(e.0.contains("signature"), "{e}");
    }

    #[test]
    fn pkcs8_keys_sign_too_and_bad_pems_are_named_without_key_material() {
        let pkcs8 = include_str!("../../../fixtures/apple_search_ads/private_key_pkcs8.pem");
        let signer =
            ClientSecretSigner::new(pkcs8, APPLE_CLIENT_ID, APPLE_TEAM_ID, APPLE_KEY_ID).unwrap();
        let point = public_key_point(APPLE_PUBLIC_KEY_PEM).unwrap();
        let jwt = signer.client_secret(now()).unwrap();
        assert!(verify_client_secret(&jwt, &point, APPLE_KEY_ID, now()).is_ok());

        let e = ClientSecretSigner::new("hello", "c", "t", "k").unwrap_err();
        assert!(e.0.contains("not a PEM"), "{e}");
        let e = ClientSecretSigner::new(APPLE_PUBLIC_KEY_PEM, "c", "t", "k").unwrap_err();
        assert!(e.0.contains("found PUBLIC KEY"), "{e}");
        let cut = &APPLE_PRIVATE_KEY_PEM[..60];
        let e = ClientSecretSigner::new(cut, "c", "t", "k").unwrap_err();
        assert!(!e.0.contains(&APPLE_PRIVATE_KEY_PEM[31..60]), "{e}");
    }
}

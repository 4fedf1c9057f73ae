//! PKCE (RFC 7636, S256) for the authorization code grant.

use base64ct::{Base64UrlUnpadded, Encoding};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A PKCE verifier (base64url of 32 random bytes) and its S256 challenge.
pub struct Pkce {
    verifier: SecretString,
}

impl Pkce {
    /// A fresh verifier.
    ///
    /// # Panics
    /// Never in practice: only if the OS has no randomness at all.
    pub fn new() -> Pkce {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut bytes[..]).expect("the OS provides randomness");
        Pkce {
            verifier: SecretString::from(Base64UrlUnpadded::encode_string(&bytes[..])),
        }
    }

    /// The verifier, sent with the code.
    pub fn verifier(&self) -> &SecretString {
        &self.verifier
    }

    /// The challenge: base64url(SHA-256(verifier)).
    pub fn challenge(&self) -> String {
        Base64UrlUnpadded::encode_string(&Sha256::digest(self.verifier.expose_secret().as_bytes()))
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_s256_of_the_verifier() {
        // Expected value from Python's hashlib and base64 (an independent
        // implementation): urlsafe_b64encode(sha256(v)).rstrip("=").
        let p = Pkce {
            verifier: SecretString::from("dBjftJeZ4CVP-mJ92K9y7vYpKD2RKJgoEwGpBvAvk".to_string()),
        };
        assert_eq!(p.challenge(), "ZeaA5nXtunMCCqW2gKOAljv9eh2yszwnuTbycbDsOy8");
        assert_eq!(Pkce::new().verifier().expose_secret().len(), 43);
    }
}

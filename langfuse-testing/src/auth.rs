//! API key authentication (LANGFUSE_SERVER.md §1.1).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hyper::header::{HeaderMap, AUTHORIZATION};

/// What a valid key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// A Basic project key: everything.
    Project,
    /// `Bearer <publicKey>`: only scores.
    Scores,
}

const HOST_HINT: &str = ". Confirm that you've configured the correct host.";

/// The 401 text for a failed authentication.
pub(crate) fn authenticate(
    headers: &HeaderMap,
    public_key: &str,
    secret_key: &str,
) -> Result<Access, String> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err("No authorization header".to_owned());
    };
    let value = String::from_utf8_lossy(value.as_bytes());
    if let Some(encoded) = value.strip_prefix("Basic ") {
        let decoded = BASE64.decode(encoded.trim()).map_err(|e| {
            // Inferred: the decoder's own text, then the hint.
            format!("{}{HOST_HINT}", e.to_string().trim_end_matches('.'))
        })?;
        let decoded = String::from_utf8_lossy(&decoded);
        let mut parts = decoded.split(':');
        let (Some(user), Some(password)) = (parts.next(), parts.next()) else {
            return Err(format!("Invalid authorization header{HOST_HINT}"));
        };
        if user.is_empty() || password.is_empty() {
            return Err(format!("Invalid authorization header{HOST_HINT}"));
        }
        // The key pair is found through the secret key; a public key that does not belong to it
        // is only logged by the server.
        if password != secret_key {
            return Err(format!("Invalid credentials{HOST_HINT}"));
        }
        return Ok(Access::Project);
    }
    if let Some(token) = value.strip_prefix("Bearer ") {
        if token.trim() == public_key {
            return Ok(Access::Scores);
        }
        return Err(format!("Invalid credentials{HOST_HINT}"));
    }
    Err("Invalid authorization header".to_owned())
}

//! Credentials read from environment variables, wrapped so they never reach logs or errors.

use std::fmt;

use super::ConfigError;

/// A credential (token, password, key). `Debug` and `Display` print `***`; [`Secret::expose`]
/// is the only way to read the value. Not `Serialize`, on purpose.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The credential itself. Call this only where the value is sent to its API.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Looks up the process environment; pass `&std_env` where an env lookup is wanted.
/// Variables whose value is not valid Unicode count as unset.
pub fn std_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads the credential named by a `*_env` setting.
///
/// `source` and `field` only label the error (`source meta: environment variable
/// META_ACCESS_TOKEN is not set (access_token_env)`); the value never appears in it.
/// A variable that is set but empty (or only whitespace) is an error too.
pub fn resolve_secret(
    source: &str,
    field: &str,
    env_name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, ConfigError> {
    match env(env_name) {
        Some(value) if !value.trim().is_empty() => Ok(Secret(value)),
        found => Err(ConfigError::MissingEnv {
            source_name: source.to_owned(),
            field: field.to_owned(),
            variable: env_name.to_owned(),
            empty: found.is_some(),
        }),
    }
}

/// Whether `name` looks like an environment-variable name (`UPPER_SNAKE_CASE`). Used to catch a
/// credential pasted where its variable's name belongs.
pub(crate) fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 128
}

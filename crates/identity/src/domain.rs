//! Accounts and the values they are made of. Each type can only be built valid, and a password
//! can never be printed.

use std::fmt;

use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::config::Secret;
use nubo_platform::error::FieldError;
use nubo_platform::uuid::Uuid;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// An email address: trimmed, lower-cased, one `@` with something on each side, no spaces,
/// at most 254 characters (the longest a mail server accepts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        let well_formed = match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
        let clean = !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if well_formed && clean && email.chars().count() <= 254 {
            Ok(Self(email))
        } else {
            Err("must be an email address like name@example.com, at most 254 characters".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the policy for a new account: 12 to 128 characters. Its `Debug`
/// prints a placeholder and it has no `Display` or `Serialize`, so it cannot reach a log.
#[derive(Clone)]
pub struct Password(Secret);

impl Password {
    pub const MIN_CHARS: usize = 12;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: Secret) -> Result<Self, String> {
        if (Self::MIN_CHARS..=Self::MAX_CHARS).contains(&raw.expose().chars().count()) {
            Ok(Self(raw))
        } else {
            Err(format!(
                "must be {} to {} characters",
                Self::MIN_CHARS,
                Self::MAX_CHARS
            ))
        }
    }

    /// A password presented at login: only bounded, not held to today's policy, since an
    /// account may predate it. The bound keeps the hashing work per guess small.
    pub fn presented(raw: Secret) -> Result<Self, String> {
        if (1..=Self::MAX_CHARS).contains(&raw.expose().chars().count()) {
            Ok(Self(raw))
        } else {
            Err(format!("must be 1 to {} characters", Self::MAX_CHARS))
        }
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// What an account may do. A token carries its account's roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "customer" => Some(Role::Customer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// An account as stored, without its password hash.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub email: Email,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl User {
    pub fn roles(&self) -> Vec<Role> {
        vec![self.role]
    }

    pub fn profile(&self) -> Profile {
        Profile {
            user_id: self.id,
            email: self.email.as_str().to_owned(),
            roles: self.roles(),
        }
    }
}

/// An account as its owner sees it: what sign-up and `/me` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Profile {
    pub user_id: Uuid,
    pub email: String,
    pub roles: Vec<Role>,
}

/// What a client sends to sign up or log in. The password is wrapped as soon as it is read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[schema(
        pattern = "^[^@\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s.\\x00-\\x1f\\x7f-\\x9f]([^@\\s\\x00-\\x1f\\x7f-\\x9f]*[^@\\s.\\x00-\\x1f\\x7f-\\x9f])?$",
        max_length = 254,
        example = "shopper@nubo.example"
    )]
    pub email: String,
    /// 1 to 128 characters at login (whatever the account was made with); a new account's
    /// password is held to [`NewAccount`]'s policy.
    #[serde(deserialize_with = "secret")]
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 128)]
    pub password: Secret,
}

/// [`Credentials`] as sign-up holds them, for the document: the password meets the policy for
/// a new account ([`Password::parse`]).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewAccount {
    #[schema(
        pattern = "^[^@\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s.\\x00-\\x1f\\x7f-\\x9f]([^@\\s\\x00-\\x1f\\x7f-\\x9f]*[^@\\s.\\x00-\\x1f\\x7f-\\x9f])?$",
        max_length = 254,
        example = "shopper@nubo.example"
    )]
    email: String,
    /// 12 to 128 characters.
    #[schema(format = Password, min_length = 12, max_length = 128)]
    password: String,
}

/// Reads a string straight into a [`Secret`], so it is never held where it could be printed.
pub fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    String::deserialize(d).map(Secret::new)
}

impl Credentials {
    /// For a new account: the email must parse and the password meet the policy.
    pub fn for_signup(self) -> Result<(Email, Password), Vec<FieldError>> {
        Self::check(Email::parse(&self.email), Password::parse(self.password))
    }

    /// For a login: the email must parse and the password be of a length worth hashing.
    pub fn for_login(self) -> Result<(Email, Password), Vec<FieldError>> {
        Self::check(
            Email::parse(&self.email),
            Password::presented(self.password),
        )
    }

    fn check(
        email: Result<Email, String>,
        password: Result<Password, String>,
    ) -> Result<(Email, Password), Vec<FieldError>> {
        match (email, password) {
            (Ok(email), Ok(password)) => Ok((email, password)),
            (email, password) => Err([("email", email.err()), ("password", password.err())]
                .into_iter()
                .filter_map(|(field, message)| {
                    message.map(|message| FieldError {
                        field: field.to_owned(),
                        message,
                    })
                })
                .collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_trimmed_and_lower_cased() {
        let email = Email::parse("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@@example.com",
            "a@b@example.com",
            "ada lovelace@example.com",
            "ada@.example.com",
            "ada@example.com.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn a_new_password_has_12_to_128_characters() {
        assert!(Password::parse(Secret::new("a".repeat(11))).is_err());
        assert!(Password::parse(Secret::new("a".repeat(12))).is_ok());
        assert!(Password::parse(Secret::new("é".repeat(128))).is_ok());
        assert!(Password::parse(Secret::new("a".repeat(129))).is_err());
    }

    #[test]
    fn a_password_never_prints() {
        let password = Password::parse(Secret::new("correct horse battery")).unwrap();
        let credentials = Credentials {
            email: "ada@example.com".into(),
            password: Secret::new("correct horse battery"),
        };
        let printed = format!("{password:?} {credentials:?}");
        assert!(!printed.contains("horse"), "{printed}");
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let credentials = Credentials {
            email: "nope".into(),
            password: Secret::new("short"),
        };
        let errors = credentials.for_signup().unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "password"]);
    }
}

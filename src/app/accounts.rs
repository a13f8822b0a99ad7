//! People and their tokens, managed while the service runs, and web sessions.
//!
//! Accounts live in the database (`accounts`), so `gk-regler token create|list|revoke`,
//! the admin API and the "Användare" page all take effect at the next request: every
//! request looks its token up by hash. A web sign-in creates a server-side session
//! (`sessions`): the cookie carries a random 256-bit session id, never the token, and
//! the database keeps only its hash, so signing out and revoking hold across restarts.

use std::time::Duration;

use crate::auth::{Principal, Purpose, Role, TokenEntry, create_token, entry_hash, token_hash};
use crate::config::Config;
use crate::store::accounts::{Account, Imported, NameTaken, NewAccount, Revocation, SessionInfo};
use crate::store::{Access, Store};

use super::{AppError, require};

/// Who may manage accounts.
pub const ADMIN_ROLES: &[Role] = &[Role::Admin];

/// The actor recorded for accounts the service imports or creates at start.
const START_ACTOR: &str = "system:start";

/// What a person asked for when creating a token.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    pub purpose: Purpose,
    /// `None`: never expires.
    pub expires: Option<Expiry>,
}

/// When a token stops working.
#[derive(Clone, Debug)]
pub enum Expiry {
    /// At the last second of this day in Sweden.
    EndOf(jiff::civil::Date),
    /// This long after creation.
    After(jiff::Span),
}

impl Expiry {
    /// Parses `YYYY-MM-DD` (valid through that day in Sweden) or a duration such as `90d`,
    /// `12h` or `1y`.
    pub fn parse(text: &str) -> Result<Self, AppError> {
        let text = text.trim();
        if let Ok(date) = text.parse::<jiff::civil::Date>() {
            return Ok(Self::EndOf(date));
        }
        text.parse::<jiff::Span>().map(Self::After).map_err(|_| {
            // The value is not repeated: a token or a personal identity number pasted into
            // the wrong field must not come back in the answer.
            AppError::Input(
                "giltig till: ange ett datum (ÅÅÅÅ-MM-DD) eller en tid som 90d, 12h eller 1y"
                    .to_owned(),
            )
        })
    }

    /// The moment of expiry as stored (RFC 3339 UTC); refuses a moment already past.
    fn at(&self) -> Result<String, AppError> {
        let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
        let moment = match self {
            Self::EndOf(date) => date
                .at(23, 59, 59, 0)
                .to_zoned(crate::profile::stockholm().clone())
                .map(|z| z.timestamp()),
            Self::After(span) => now.checked_add(*span).map(|z| z.timestamp()),
        }
        .map_err(|_| {
            AppError::Input("giltig till: tiden går utanför det som kan räknas".to_owned())
        })?;
        if moment <= now.timestamp() {
            return Err(AppError::Input(
                "giltighetstiden måste sluta i framtiden".to_owned(),
            ));
        }
        Ok(moment.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    }
}

/// A token just created: shown once, never stored.
#[derive(Debug)]
pub struct Created {
    pub id: i64,
    /// The name as stored (trimmed, NFC, one space between words).
    pub name: String,
    pub token: String,
    pub expires_at: Option<String>,
}

fn access(principal: &Principal, action: &'static str) -> Access {
    super::access(principal, action, None, None)
}

/// The starts of the names the service and the command line write into the access log
/// and onto what they store (`system:start`, `cli:import`, `cli:backup`, …): no token may
/// take one, or its work would read as theirs.
const RESERVED_PREFIXES: [&str; 2] = ["system:", "cli:"];

/// A person's name as stored: trimmed, in Unicode normal form NFC (so `Åsa` written
/// either way is one name), 1–64 characters: printable ASCII, and outside ASCII only
/// letters, marks and digits. No name may look like another: no modifier letters or
/// full-width forms (`ː`, `：`, `ｃ` look like `:` and `c`), no two scripts in one name
/// (Latin `c` and Cyrillic `с`), and none starting with what looks like the service's
/// `system:` or the command line's `cli:`. That no new name looks like a known account's
/// is checked where the account is stored.
fn check_name(name: &str) -> Result<String, AppError> {
    use unicode_general_category::{GeneralCategory as G, get_general_category};
    use unicode_normalization::UnicodeNormalization as _;
    let name: String = name.trim().nfc().collect();
    // Spaces inside a name are one space: `Åsa  Öberg` is drawn as `Åsa Öberg`.
    let name = name
        .split(' ')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let allowed = |c: char| {
        c.is_ascii_graphic()
            || c == ' '
            || (!c.is_ascii()
                && !crate::profile::CaseId::is_invisible(c)
                && !('\u{ff00}'..='\u{ffef}').contains(&c)
                // UTS #39's General Security Profile: no small capitals, mathematical or
                // phonetic letters, nor scripts of limited use (`ᴄʟɪ`, `𝙲𝙻𝙸`, `ꓚꓡꓲ`).
                && unicode_security::GeneralSecurityProfile::identifier_allowed(c)
                && matches!(
                    get_general_category(c),
                    G::UppercaseLetter
                        | G::LowercaseLetter
                        | G::TitlecaseLetter
                        | G::ModifierLetter
                        | G::OtherLetter
                        | G::NonspacingMark
                        | G::SpacingMark
                        | G::DecimalNumber
                ))
    };
    let valid = !name.is_empty() && name.chars().count() <= 64 && name.chars().all(allowed);
    if !valid {
        return Err(AppError::Input(
            "namnet måste vara 1–64 synliga tecken: bokstäver, siffror, mellanslag och skiljetecken"
                .to_owned(),
        ));
    }
    if !crate::look_alike::is_single_script(&name) {
        return Err(AppError::Input(
            "namnet blandar alfabet, till exempel latinska bokstäver med grekiska eller \
             kyrilliska, som kan se likadana ut; skriv det med ett alfabet"
                .to_owned(),
        ));
    }
    // Compared without marks, so `systeṁ:` is reserved like `system:`, and by look
    // (`clı:` is reserved like `cli:`).
    let bare: String = name
        .nfd()
        .filter(|c| {
            !matches!(
                get_general_category(*c),
                G::NonspacingMark | G::EnclosingMark | G::SpacingMark
            )
        })
        .collect();
    let reserved = RESERVED_PREFIXES
        .iter()
        .any(|prefix| crate::look_alike::starts_like(&bare, prefix));
    if reserved {
        return Err(AppError::Input(
            "namn som börjar med system: eller cli: är tjänstens eller kommandoradens; välj ett annat namn"
                .to_owned(),
        ));
    }
    Ok(name)
}

/// Imports the tokens of `config` (its `tokens` and its tokens file) into the database:
/// a token whose hash is already stored is left alone, so this is idempotent and a
/// revoked token stays revoked. With `first_admin`, when no account exists at all, an
/// admin account is created and its token returned (to be shown once).
pub async fn import_configured(
    store: &Store,
    config: &Config,
    first_admin: bool,
) -> Result<(Imported, Option<String>), AppError> {
    let from_file =
        crate::config::read_token_file(&config.tokens_file).map_err(AppError::Config)?;
    let file = config.tokens_file.display();
    let entries = config
        .tokens
        .iter()
        .enumerate()
        .map(|(index, entry)| (format!("tokens[{index}]"), entry))
        .chain(
            from_file
                .iter()
                .enumerate()
                .map(|(index, entry)| (format!("{file}: [{index}]"), entry)),
        );
    let accounts = configured_accounts(entries)?;
    let (token, entry) = create_token("admin", Role::Admin);
    let first_admin = first_admin.then(|| NewAccount {
        name: entry.name,
        role: Role::Admin,
        purpose: Purpose::Normal,
        token_sha256: token_hash(&token),
        expires_at: None,
        created_by: START_ACTOR.to_owned(),
    });
    let imported = store.import_accounts(accounts, first_admin).await?;
    if !imported.names_taken.is_empty() {
        let why: Vec<String> = imported
            .names_taken
            .iter()
            .map(|(name, taken)| name_taken_message(name, taken))
            .collect();
        return Err(AppError::Config(format!(
            "tokens: {}. Inga tokens lästes in.",
            why.join("; ")
        )));
    }
    if imported.imported > 0 {
        tracing::info!(
            imported = imported.imported,
            "imported token hashes from the configuration and tokens file"
        );
    }
    let shown = imported.first_admin.then_some(token);
    Ok((imported, shown))
}

/// The accounts of configured token entries, each given with where it stands. Refuses,
/// saying where, a name that is invalid or the command line's, and a name or a token
/// given twice (the second would never work).
fn configured_accounts<'a>(
    entries: impl Iterator<Item = (String, &'a TokenEntry)>,
) -> Result<Vec<NewAccount>, AppError> {
    let mut names: Vec<String> = Vec::new();
    let mut hashes = std::collections::HashSet::new();
    let mut accounts = Vec::new();
    for (at, entry) in entries {
        let refuse = |why: String| AppError::Config(format!("{at}: {why}"));
        let name = check_name(&entry.name).map_err(|err| refuse(err.to_string()))?;
        let token_sha256 = entry_hash(entry).map_err(refuse)?;
        if let Some(other) = names
            .iter()
            .find(|other: &&String| crate::look_alike::look_alike(other, &name))
        {
            return Err(refuse(if *other == name {
                format!("namnet {name} står mer än en gång")
            } else {
                format!("namnet {name} ser ut som {other}, som också står där")
            }));
        }
        names.push(name.clone());
        if !hashes.insert(token_sha256) {
            return Err(refuse("samma token står mer än en gång".to_owned()));
        }
        accounts.push(NewAccount {
            name,
            role: entry.role,
            purpose: Purpose::Normal,
            token_sha256,
            expires_at: None,
            created_by: START_ACTOR.to_owned(),
        });
    }
    Ok(accounts)
}

/// Creates an account with a fresh token (returned once; only its hash is stored).
pub async fn create(
    store: &Store,
    principal: &Principal,
    new: NewToken,
) -> Result<Created, AppError> {
    require(principal, ADMIN_ROLES)?;
    if new.purpose != Purpose::Test {
        super::refuse_for_tests(
            principal,
            "En testtoken kan bara skapa testtokens: en vanlig token gör verkliga kontroller.",
        )?;
    }
    let name = check_name(&new.name)?;
    // A test admin takes no name a normal token has had, revoked or expired: its checks
    // and answers are that person's, and a renewal of that token would be refused.
    if principal.is_for_tests()
        && store.accounts().await?.iter().any(|account| {
            account.purpose == Purpose::Normal && account.name.eq_ignore_ascii_case(&name)
        })
    {
        return Err(AppError::Input(name_refused_to_tests(&name)));
    }
    let expires_at = new.expires.as_ref().map(Expiry::at).transpose()?;
    let (token, _) = create_token(&name, new.role);
    let account = NewAccount {
        name: name.clone(),
        role: new.role,
        purpose: new.purpose,
        token_sha256: token_hash(&token),
        expires_at: expires_at.clone(),
        created_by: principal.name.clone(),
    };
    match store
        .create_account(account, access(principal, "account_create"))
        .await?
    {
        Ok(id) => {
            tracing::info!(actor = ?principal.name, account = id, role = new.role.as_str(), "account created");
            Ok(Created {
                id,
                name,
                token,
                expires_at,
            })
        }
        // A test admin is not told which real name is there, or that it is active.
        Err(_) if principal.is_for_tests() => Err(AppError::Input(name_refused_to_tests(&name))),
        Err(taken) => Err(AppError::Input(name_taken_message(&name, &taken))),
    }
}

/// Why a test admin may not take `name`, naming no other token.
fn name_refused_to_tests(name: &str) -> String {
    format!(
        "namnet {name} kan inte användas: det finns redan, har funnits eller liknar ett namn \
         som finns; välj ett annat namn"
    )
}

/// Why `name` may not be taken, and what to do, for the person who gave it.
fn name_taken_message(name: &str, taken: &NameTaken) -> String {
    match taken {
        NameTaken::Active => format!(
            "det finns redan en aktiv token med namnet {name}; återkalla den först \
             (gk-regler token revoke) eller ge den nya ett annat namn"
        ),
        NameTaken::LooksLike(known) => format!(
            "namnet {name} ser ut som {known}, som redan finns; välj ett namn som inte kan \
             förväxlas med det, eller samma namn skrivet likadant"
        ),
    }
}

/// Every account (never a token or hash); to a test admin, the test accounts only.
pub async fn list(store: &Store, principal: &Principal) -> Result<Vec<Account>, AppError> {
    require(principal, ADMIN_ROLES)?;
    let mut accounts = store.accounts().await?;
    // A test admin sees the test tokens only: who works with real cases is not theirs
    // to know.
    if principal.is_for_tests() {
        accounts.retain(|account| account.purpose == Purpose::Test);
        // Nor who made them, unless a test token did.
        let test_names: Vec<String> = accounts.iter().map(|a| a.name.clone()).collect();
        for account in &mut accounts {
            if !test_names.contains(&account.created_by) {
                account.created_by = "en administratör".to_owned();
            }
        }
    }
    store.log_access(access(principal, "account_list")).await?;
    Ok(accounts)
}

/// Revokes account `id`'s token and ends its sessions, at once.
pub async fn revoke(store: &Store, principal: &Principal, id: i64) -> Result<(), AppError> {
    require(principal, ADMIN_ROLES)?;
    super::refuse_for_tests(
        principal,
        "En testtoken kan inte återkalla tokens: det avgör vem som kan arbeta med verkliga ärenden.",
    )?;
    revoke_as(store, principal, id, false).await
}

/// Revokes the account of a token that was made but never shown (its output could not be
/// written): nobody holds it, so it is revoked even when it is the last active admin.
pub async fn revoke_unseen(store: &Store, principal: &Principal, id: i64) -> Result<(), AppError> {
    require(principal, ADMIN_ROLES)?;
    revoke_as(store, principal, id, true).await
}

async fn revoke_as(
    store: &Store,
    principal: &Principal,
    id: i64,
    last_admin_too: bool,
) -> Result<(), AppError> {
    match store
        .revoke_account(id, access(principal, "account_revoke"), last_admin_too)
        .await?
    {
        Revocation::Revoked => {
            tracing::info!(actor = ?principal.name, account = id, "account revoked");
            Ok(())
        }
        Revocation::NotActive => Err(AppError::NotFound),
        Revocation::LastAdmin => Err(AppError::Conflict(format!(
            "token nr {id} är den sista aktiva administratören och kan inte återkallas: då kunde ingen hantera tokens i tjänsten. Skapa en ny admin-token först."
        ))),
    }
}

/// The active account a token belongs to.
pub async fn authenticate(store: &Store, token: &str) -> Result<Option<Principal>, AppError> {
    Ok(store
        .account_by_token(token_hash(token))
        .await?
        .map(|(_, principal)| principal))
}

/// A new web session: the cookie value and the form token, both random.
#[derive(Debug)]
pub struct NewSession {
    pub id: String,
    pub csrf_token: String,
    pub principal: Principal,
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Signs in with `token`: `None` when no active account has it.
pub async fn sign_in(store: &Store, token: &str) -> Result<Option<NewSession>, AppError> {
    let Some((account_id, principal)) = store.account_by_token(token_hash(token)).await? else {
        return Ok(None);
    };
    let id = random_token();
    let csrf_token = random_token();
    store
        .create_session(
            token_hash(&id),
            account_id,
            csrf_token.clone(),
            unix_now(),
            access(&principal, "sign_in"),
        )
        .await?;
    Ok(Some(NewSession {
        id,
        csrf_token,
        principal,
    }))
}

/// The session a cookie names, when it is live: not idle longer than `idle`, and its
/// account still active. Each use moves its idle deadline (recorded at most once a
/// minute, to keep page loads from writing on every request).
pub async fn session(
    store: &Store,
    id: &str,
    idle: Duration,
) -> Result<Option<SessionInfo>, AppError> {
    let now = unix_now();
    let idle = i64::try_from(idle.as_secs()).unwrap_or(i64::MAX);
    let hash = token_hash(id);
    let Some(session) = store.session(hash, now.saturating_sub(idle)).await? else {
        return Ok(None);
    };
    // A database that takes no writes (full, read-only) must not lock people out of
    // reading pages: the use is then not recorded, and the session ends a little early.
    if now - session.last_seen >= 60.min(idle / 2).max(1)
        && let Err(err) = store.touch_session(hash, now).await
    {
        tracing::warn!(error = %err, "session use not recorded");
    }
    Ok(Some(session))
}

/// Ends the session a cookie names.
pub async fn sign_out(store: &Store, id: &str, principal: &Principal) -> Result<(), AppError> {
    store
        .delete_session(token_hash(id), Some(access(principal, "sign_out")))
        .await?;
    Ok(())
}

/// Deletes sessions idle longer than `idle` (run now and then; a stale session is
/// refused by [`session`] anyway).
pub async fn delete_idle_sessions(store: &Store, idle: Duration) -> Result<(), AppError> {
    let idle = i64::try_from(idle.as_secs()).unwrap_or(i64::MAX);
    store
        .delete_idle_sessions(unix_now().saturating_sub(idle))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_takes_a_date_or_a_duration_and_must_lie_ahead() {
        assert!(matches!(Expiry::parse("2999-01-31"), Ok(Expiry::EndOf(_))));
        assert!(matches!(Expiry::parse("90d"), Ok(Expiry::After(_))));
        assert!(Expiry::parse("snart").is_err());
        let past = Expiry::parse("2001-01-01").expect("a date");
        assert!(past.at().is_err());
        let end = Expiry::parse("2999-01-31")
            .expect("a date")
            .at()
            .expect("ahead");
        // The last second of the day in Sweden (winter: UTC+1; summer: UTC+2).
        assert_eq!(end, "2999-01-31T22:59:59Z");
        let summer = Expiry::parse("2999-07-31")
            .expect("a date")
            .at()
            .expect("ahead");
        assert_eq!(summer, "2999-07-31T21:59:59Z");
        assert_eq!(crate::present::swedish_time(&summer), "2999-07-31 23:59");
    }

    #[test]
    fn names_are_visible_text() {
        assert_eq!(check_name(" anna ").ok().as_deref(), Some("anna"));
        assert!(check_name("").is_err());
        assert!(check_name("a\u{202e}b").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        // The command line's names: its work alone is written under them.
        assert!(check_name("cli:import").is_err());
        assert!(check_name("SYSTEM:start").is_err());
        // Marks that draw nothing, or little, do not make a reserved name another.
        for name in [
            "system\u{34f}:start",
            "system\u{fe00}:start",
            "cli\u{180b}:import",
            "cli\u{e0100}:import",
            "system\u{307}:start",
        ] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        // Nor any name: `anna` with a variation selector looks like `anna`.
        for name in ["anna\u{fe0f}", "an\u{34f}na", "anna\u{180b}"] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        assert!(check_name(" CLI:backup").is_err());
        assert_eq!(check_name("clinic").ok().as_deref(), Some("clinic"));
        // Names that look like the command line's, or like each other.
        for look_alike in [
            "\u{441}li:import",  // Cyrillic с
            "cli\u{ff1a}import", // full-width colon
            "\u{ff43}\u{ff4c}\u{ff49}:backup",
            "cli\u{2d0}import", // modifier letter triangular colon
            "anna\u{3164}",     // Hangul filler, a letter that draws nothing
            "anna\u{a0}berg",   // no-break space
        ] {
            assert!(check_name(look_alike).is_err(), "{look_alike:?}");
        }
        // Letters outside UTS #39's General Security Profile: small capitals,
        // mathematical letters, a script of limited use.
        for name in [
            "\u{1d04}\u{29f}\u{26a}:token",
            "\u{1d672}\u{1d67b}\u{1d678}:import",
            "\u{a4da}\u{a4e1}\u{a4f2}:x",
        ] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        // Spaces inside a name are one space.
        assert_eq!(check_name("Åsa  Öberg").ok().as_deref(), Some("Åsa Öberg"));
        // One name however it is written.
        assert_eq!(
            check_name("A\u{30a}sa").ok().as_deref(),
            Some("\u{c5}sa"),
            "NFD Åsa is stored as NFC"
        );
        for name in [
            "Åsa Öberg",
            "anna.andersson@fk.se",
            "o'brien",
            "ops:monitor",
            "Anna Berg (FK)",
            "Дмитрий",
            "李",
            "ルーシー",
            "Ánde Máhtte Ŋuolla",
        ] {
            assert_eq!(check_name(name).ok().as_deref(), Some(name), "{name}");
        }
    }
}

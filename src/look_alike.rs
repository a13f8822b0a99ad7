//! When two names look alike, by Unicode's confusables and scripts (UTS #39, through
//! `unicode-security`). Account names pass through here, so that no new name can pass for
//! another person's or for the names the service and the command line write themselves.

use unicode_normalization::UnicodeNormalization as _;
use unicode_security::{MixedScript as _, skeleton};

/// Whether `a` and `b` would be taken for one another: they have one [`key`] (`асе` in
/// Cyrillic and `ace`; `Iisa` and `lisa`; `CLI`, `𝙲𝙻𝙸` and `cli`).
pub fn look_alike(a: &str, b: &str) -> bool {
    key(a) == key(b)
}

/// Whether `name` starts with something that looks like `prefix`, by [`key`].
pub fn starts_like(name: &str, prefix: &str) -> bool {
    key(name).starts_with(&key(prefix))
}

/// The form that names taken for one another share: compatibility forms resolved (NFKC:
/// full-width and mathematical letters), UTS #39's skeleton in lower case (taken again, as
/// a lower-case letter may have a prototype of its own), and the letters that only case
/// tells apart drawn as one (`I` is `l` to the eye, so `i`, `l` and `1` are one letter, as
/// are `o` and `0`).
pub fn key(text: &str) -> String {
    // A dotless ı with a combining dot above is drawn as i.
    let compatible: String = text
        .nfkc()
        .collect::<String>()
        .replace("\u{131}\u{307}", "i");
    let first: String = skeleton(&compatible).collect();
    let second: String = skeleton(&first.to_lowercase()).collect();
    second
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'i' | '1' | '|' => 'l',
            '0' => 'o',
            other => other,
        })
        .collect()
}

/// What the non-ASCII character `c` may be taken for, when it is one that passes for
/// another: a compatibility form (`－`, `𝐅`, full-width or mathematical letters: its NFKC
/// form), or a character of another script than Latin, or no script, that UTS #39 lists as
/// confusable (`К` and `Ӧ` in Cyrillic, `ό` in Greek, `‑`, `−` and `—` for `-`: its
/// skeleton), or a Latin letter outside UTS #39's General Security Profile (small
/// capitals, IPA letters). Latin letters in everyday use stay (`Å`, `ö`, `é`, `Æ`, `Ø`,
/// `þ`): they are what other letters are taken for.
pub fn passes_for_another(c: char) -> Option<String> {
    use unicode_script::{Script, UnicodeScript as _};
    if c.is_ascii() {
        return None;
    }
    let compatible: String = std::iter::once(c).nfkc().collect();
    if compatible.chars().ne(std::iter::once(c)) {
        return Some(compatible);
    }
    // Latin letters outside UTS #39's General Security Profile (small capitals, IPA
    // letters such as `ɑ`, `ɡ`, `ǀ`) are taken for ordinary ones.
    if c.script() == Script::Latin {
        return (!unicode_security::GeneralSecurityProfile::identifier_allowed(c))
            .then(|| skeleton(&compatible).collect());
    }
    let skeleton: String = skeleton(&compatible).collect();
    let decomposed: String = std::iter::once(c).nfd().collect();
    (skeleton != decomposed).then_some(skeleton)
}

/// Whether `name` is written in one script (digits and punctuation go with any): Latin
/// with Cyrillic or Greek is not, Japanese kana with kanji is.
pub fn is_single_script(name: &str) -> bool {
    name.is_single_script()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_be_taken_for_one_another_look_alike() {
        for (a, b) in [
            ("ace", "\u{430}\u{441}\u{435}"),
            ("lisa", "Iisa"),
            ("anna", "ANNA"),
            ("cli", "cl\u{131}"),
            ("anna", "an\u{34f}na"),
            ("lisa", "\u{1d67b}\u{1d678}\u{1d682}\u{1d670}"),
            ("anna", "ANNA"),
            ("lisa", "l\u{131}\u{307}sa"),
        ] {
            assert!(look_alike(a, b), "{a:?} {b:?}");
        }
        for (a, b) in [("anna", "hanna"), ("Åsa", "Asa"), ("Öberg", "Oberg")] {
            assert!(!look_alike(a, b), "{a:?} {b:?}");
        }
        assert!(starts_like("\u{1bd}ystem:start", "system:"));
        assert!(starts_like("CL\u{131}:x", "cli:"));
        for reserved in [
            "\u{1d672}\u{1d67b}\u{1d678}:import",
            "\u{1d402}\u{1d40b}\u{1d408}:token",
            "\u{a4da}\u{a4e1}\u{a4f2}:x",
            "CLI:backup",
        ] {
            assert!(starts_like(reserved, "cli:"), "{reserved:?}");
        }
        assert!(!starts_like("clinic", "cli:"));
    }

    #[test]
    fn characters_that_pass_for_others() {
        for (c, like) in [
            ('\u{ff0d}', "-"),
            ('\u{41a}', "K"),
            ('\u{1d405}', "F"),
            ('\u{ff11}', "1"),
            ('\u{4e6}', "O\u{308}"),
            ('\u{3cc}', "o\u{301}"),
        ] {
            assert_eq!(passes_for_another(c).as_deref(), Some(like), "{c:?}");
        }
        for c in ['\u{2011}', '\u{2212}', '\u{2014}', '\u{203e}'] {
            assert!(passes_for_another(c).is_some(), "{c:?}");
        }
        for c in ['\u{251}', '\u{261}', '\u{1c0}', '\u{1d04}', '\u{29f}'] {
            assert!(passes_for_another(c).is_some(), "{c:?}");
        }
        for c in "ÅÄÖåäöéüØøÆæþÞʒƷ-Kab1李".chars() {
            assert_eq!(passes_for_another(c), None, "{c:?}");
        }
    }

    #[test]
    fn one_script_a_name() {
        assert!(is_single_script("Åsa Öberg (FK) 2"));
        assert!(is_single_script("Дмитрий"));
        assert!(is_single_script("山田 はなこ"));
        assert!(!is_single_script("\u{441}li"));
        assert!(!is_single_script("anna\u{3b1}"));
    }
}

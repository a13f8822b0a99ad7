//! Whether a text people read shows as it is written: no character that does not show or
//! that turns the text around. Rule-set texts are checked when the set loads, and the
//! messages a rule gives when it runs.

/// Whether a text people read may hold line breaks (a rationale may; a title may not).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    One,
    Many,
}

/// Why a text people read (a set's name and version, a rule's title, message, rationale,
/// how to clear it and sources, a reason's label) cannot stand: it has no letter or digit,
/// or it holds a character that does not show or that turns the text around (control,
/// zero-width and bidirectional characters, spaces other than the ASCII one, private-use
/// and unassigned code points, the letters that draw nothing: `CaseId::is_invisible`), so
/// two texts that look alike would differ, or a title would read otherwise than it is
/// written. Tabs, and line breaks where `lines` allows them, are text.
pub fn unreadable_text(text: &str, lines: Lines) -> Option<&'static str> {
    if !text.chars().any(char::is_alphanumeric) {
        return Some("måste innehålla bokstäver eller siffror");
    }
    has_hidden_characters(text, lines).then_some(
        "innehåller tecken som inte syns eller som vänder texten (styrtecken, radbrytningar, \
         nollbreddstecken, riktningstecken eller andra mellanslag än det vanliga)",
    )
}

/// Whether `text` holds a character that does not show or that turns the text around
/// (`CaseId::is_invisible`); tabs, and line breaks where `lines` allows them, are text.
pub fn has_hidden_characters(text: &str, lines: Lines) -> bool {
    text.chars().any(|c| {
        c != '\t' && !(c == '\n' && lines == Lines::Many) && crate::profile::CaseId::is_invisible(c)
    })
}

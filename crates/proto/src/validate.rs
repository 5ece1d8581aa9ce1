//! Rules for names a user types: participant names and room names.
//!
//! A name has two forms. The *display* form is what the user typed, trimmed, with each
//! run of whitespace made one space: it is what everyone sees. The *key* decides which
//! names are the same: two names with one key could not be told apart on screen, so a
//! room holds one participant per key, and room names with one key are one room. The
//! key is the name in Unicode compatibility form (NFKC: fullwidth `Ａｄａ` and math bold
//! `𝐀𝐝𝐚` become `Ada`), lowercase, reduced to the confusable skeleton of Unicode
//! Technical Standard #39 (Cyrillic `а` and Latin `a` share a skeleton, as do `rn` and
//! `m`, or `l`, `I` and `1`).
//!
//! What cannot be made visible that way is refused: characters that show nothing
//! (default-ignorable code points, among them zero-width spaces and the Hangul fillers
//! U+115F, U+1160, U+3164, U+FFA0), characters UTS #39 restricts in identifiers
//! (obsolete, technical or uncommon letters, and most stray combining marks), more than
//! two combining marks in a row, and names that mix scripts (`Аda` with a Cyrillic
//! `А`), except Latin with Chinese, Japanese or Korean as UTS #39's "highly restrictive"
//! level allows.

use unicode_normalization::UnicodeNormalization;
use unicode_script::{Script, UnicodeScript};
use unicode_security::general_security_profile::IdentifierType;
use unicode_security::mixed_script::AugmentedScriptSet;
use unicode_security::{GeneralSecurityProfile, MixedScript};

/// Longest participant name, in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// Longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = 48;

/// Most combining marks allowed in a row (two occur in real names, e.g. Hindi `हुँ`;
/// a pile of them draws over the neighbouring letters).
const MAX_MARKS_IN_A_ROW: usize = 2;

/// A name that passed the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// What to show: as typed, trimmed, whitespace runs made one space.
    pub display: String,
    /// What decides sameness: names with one key look alike.
    pub key: String,
}

/// Checks a display name: 1 to 32 characters after trimming, letters, digits, spaces and
/// `-_.'`, nothing invisible, one script. Returns the name or a message for the user.
pub fn participant_name(name: &str) -> Result<Name, String> {
    let display = collapse_whitespace(name);
    if display.is_empty() {
        return Err("Please enter a name.".into());
    }
    if display.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "The name is too long: at most {MAX_NAME_CHARS} characters."
        ));
    }
    check_characters(&display, |c| matches!(c, ' ' | '-' | '_' | '.' | '\''))
        .map_err(|e| e.message("The name", "use letters, digits, spaces and - _ . '"))?;
    Ok(Name {
        key: key(&display),
        display,
    })
}

/// Checks a room name: 1 to 48 characters from letters, digits, `-` and `_`, so it fits
/// in a URL path (`/r/<room>`), nothing invisible, one script. Room names whose keys are
/// equal (e.g. `Physics` and `physics`) name the same room.
pub fn room_name(room: &str) -> Result<Name, String> {
    let room = room.trim();
    if room.is_empty() {
        return Err("Please enter a room name.".into());
    }
    if room.chars().count() > MAX_ROOM_CHARS {
        return Err(format!(
            "The room name is too long: at most {MAX_ROOM_CHARS} characters."
        ));
    }
    check_characters(room, |c| matches!(c, '-' | '_'))
        .map_err(|e| e.message("The room name", "use letters, digits, - and _"))?;
    Ok(Name {
        display: room.to_string(),
        key: key(room),
    })
}

/// The key of a name that passed the rules: NFKC, lowercase, whitespace collapsed, the
/// UTS #39 skeleton.
fn key(display: &str) -> String {
    let folded: String = display.nfkc().collect::<String>().to_lowercase();
    let folded = collapse_whitespace(&folded.nfkc().collect::<String>());
    unicode_security::skeleton(&folded).collect()
}

/// `text` trimmed, each run of whitespace made one space.
fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Why a name's characters are refused.
enum Refusal {
    /// Not a letter, digit or allowed punctuation.
    Character(char),
    /// Shows nothing (default-ignorable, a filler).
    Invisible(char),
    /// Restricted by UTS #39: obsolete, technical, uncommon, or a stray mark.
    Unusual(char),
    /// Combining marks piled up, or on no letter.
    StackedMarks,
    /// Letters of several scripts.
    MixedScripts(Vec<&'static str>),
}

impl Refusal {
    fn message(&self, what: &str, rule: &str) -> String {
        match self {
            Refusal::Character(c) => format!("{what} may not contain {c:?}: {rule}"),
            Refusal::Invisible(c) => format!(
                "{what} may not contain an invisible character (U+{:04X}): {rule}",
                u32::from(*c)
            ),
            Refusal::Unusual(c) => format!(
                "{what} may not contain {c:?} (U+{:04X}), which is rarely used and could make \
                 it look like another: {rule}",
                u32::from(*c)
            ),
            Refusal::StackedMarks => format!(
                "{what} has accents or other combining marks piled up or standing alone (at \
                 most {MAX_MARKS_IN_A_ROW} on one letter): {rule}"
            ),
            Refusal::MixedScripts(scripts) => format!(
                "{what} mixes letters of different scripts ({}), which can make it look like \
                 another: write it in one script.",
                scripts.join(", ")
            ),
        }
    }
}

/// Checks every character of `text` (a trimmed name) and its scripts; `punctuation` says
/// which non-alphanumeric characters the kind of name allows.
fn check_characters(text: &str, punctuation: impl Fn(char) -> bool) -> Result<(), Refusal> {
    for c in text.chars() {
        if c.identifier_type() == Some(IdentifierType::Default_Ignorable) {
            return Err(Refusal::Invisible(c));
        }
        // Marks are allowed here so that a name typed decomposed (NFD, e.g. pasted from
        // a macOS file name) passes like the same name composed.
        if !(c.is_alphanumeric() || is_combining_mark(c) || punctuation(c)) {
            return Err(Refusal::Character(c));
        }
    }
    // The rest judges what the name looks like: its compatibility form.
    let normal: String = text.nfkc().collect();
    for c in normal.chars() {
        if punctuation(c) {
            continue;
        }
        if c.identifier_type() == Some(IdentifierType::Default_Ignorable) {
            return Err(Refusal::Invisible(c));
        }
        if !allowed_in_names(c) {
            return Err(Refusal::Unusual(c));
        }
    }
    // Marks on a letter, counted decomposed: Vietnamese and Yoruba need two.
    let mut marks = None;
    for c in normal.nfd() {
        if is_combining_mark(c) {
            match &mut marks {
                Some(n) if *n < MAX_MARKS_IN_A_ROW => *n += 1,
                _ => return Err(Refusal::StackedMarks),
            }
        } else if punctuation(c) {
            marks = None;
        } else {
            marks = Some(0);
        }
    }
    let letters: String = normal.chars().filter(|c| !punctuation(*c)).collect();
    if !single_script_enough(&letters) {
        return Err(Refusal::MixedScripts(scripts_of(&letters)));
    }
    Ok(())
}

/// UTS #39's identifier status "allowed" (recommended and inclusion characters), and
/// the letters of limited-use scripts (e.g. Cherokee, N'Ko, Adlam): people are named in
/// them, and the script rule keeps them from mixing into Latin names.
fn allowed_in_names(c: char) -> bool {
    c.identifier_allowed() || c.identifier_type() == Some(IdentifierType::Limited_Use)
}

/// Nonspacing, spacing and enclosing marks (general categories Mn, Mc, Me): each joins
/// the character before it.
fn is_combining_mark(c: char) -> bool {
    unicode_normalization::char::is_combining_mark(c)
}

/// One script, or Latin with Chinese, Japanese or Korean (UTS #39 "highly restrictive").
fn single_script_enough(letters: &str) -> bool {
    if letters.is_single_script() {
        return true;
    }
    let mut without_latin = AugmentedScriptSet::default();
    for c in letters.chars() {
        let set = AugmentedScriptSet::for_char(c);
        if !set.base.contains_script(Script::Latin) {
            without_latin.intersect_with(set);
        }
    }
    without_latin.hanb || without_latin.jpan || without_latin.kore
}

/// The scripts of `letters`, in order of appearance, by their English names.
fn scripts_of(letters: &str) -> Vec<&'static str> {
    let mut scripts = Vec::new();
    for c in letters.chars() {
        let s = c.script();
        if !matches!(s, Script::Common | Script::Inherited | Script::Unknown)
            && !scripts.contains(&s.full_name())
        {
            scripts.push(s.full_name());
        }
    }
    scripts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn display(name: &str) -> Result<String, String> {
        participant_name(name).map(|n| n.display)
    }

    fn key_of(name: &str) -> String {
        participant_name(name).expect("valid name").key
    }

    #[test]
    fn names() {
        assert_eq!(display("  Ada Lovelace "), Ok("Ada Lovelace".into()));
        assert_eq!(display("Zoë O'Neil"), Ok("Zoë O'Neil".into()));
        assert_eq!(display("Ada \t Lovelace"), Ok("Ada Lovelace".into()));
        assert!(display("").is_err());
        assert!(display("   ").is_err());
        assert!(display("<script>").is_err());
        assert!(display("a\u{0}b").is_err());
        assert!(display(&"x".repeat(33)).is_err());
        assert!(display(&"é".repeat(32)).is_ok());
        for real in [
            "José Núñez",
            "Nguyễn Thị Minh Khai",
            "Dvořák",
            "Ølstykke",
            "Иван Петров",
            "Γιώργος",
            "山田 太郎",
            "やまだ タロウ",
            "김민준",
            "हुँ राम",
            "محمد",
            "Li 李",
            "Anne-Marie d'Arc",
            "R2-D2",
            "Jose\u{0301}",        // decomposed, as some systems paste it
            "O\u{0323}\u{0300}la", // Yoruba: two marks on one letter
        ] {
            assert_eq!(display(real), Ok(real.to_string()), "{real}");
        }
    }

    #[test]
    fn look_alikes_are_refused_or_share_a_key() {
        let ada = key_of("Ada");
        // Same key: these would show as "Ada" or nearly.
        for same in ["ada", "ADA", "Ａｄａ", "𝐀𝐝𝐚", "𝖠𝖽𝖺"] {
            assert_eq!(key_of(same), ada, "{same}");
        }
        // Refused outright.
        for refused in [
            "Аda",                         // Cyrillic А
            "Adа",                         // Cyrillic а
            "\u{3164}Ada",                 // Hangul filler
            "Ada\u{3164}",                 //
            "\u{3164}\u{3164}",            // only fillers
            "\u{115F}\u{1160}",            // Hangul choseong and jungseong fillers
            "\u{FFA0}",                    // halfwidth Hangul filler
            "A\u{200B}da",                 // zero-width space
            "Ada\u{200D}",                 // zero-width joiner
            "Ad\u{034F}a",                 // combining grapheme joiner
            "A\u{0363}da",                 // combining Latin small letter a
            "Ada\u{0301}\u{0301}\u{0301}", // piled accents
            "\u{0301}Ada",                 // an accent on nothing
            "Ada \u{0336}",                // an overlay on a space
        ] {
            let refusal = participant_name(refused).expect_err(refused);
            assert!(!refusal.is_empty(), "{refused}");
        }
        assert_eq!(key_of("Ada  Lovelace"), key_of("Ada Lovelace"));
        assert_eq!(key_of("Ada\u{3000}Lovelace"), key_of("ada lovelace"));
        // Whole-script look-alikes collide through the skeleton.
        assert_eq!(key_of("аре"), key_of("ape"));
        assert_ne!(key_of("Ada"), key_of("Adam"));
        assert_ne!(key_of("José"), key_of("Jose"));
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let mixed = participant_name("Аda").expect_err("mixed");
        assert!(
            mixed.contains("Cyrillic") && mixed.contains("Latin"),
            "{mixed}"
        );
        let invisible = participant_name("\u{3164}").expect_err("filler");
        assert!(
            invisible.contains("invisible") && invisible.contains("U+3164"),
            "{invisible}"
        );
        let piled = participant_name("Ada\u{0301}\u{0301}\u{0301}").expect_err("marks");
        assert!(piled.contains("combining marks"), "{piled}");
    }

    #[test]
    fn rooms() {
        let room = |r: &str| room_name(r).map(|n| n.display);
        assert_eq!(room("physics-101"), Ok("physics-101".into()));
        assert!(room("a/b").is_err());
        assert!(room("a b").is_err());
        assert!(room("..").is_err());
        assert!(room(&"r".repeat(49)).is_err());
        assert!(room("Рhysics").is_err(), "Cyrillic Р");
        assert!(room("lab\u{3164}").is_err());
        let key = |r: &str| room_name(r).expect("valid").key;
        assert_eq!(key("Physics"), key("physics"));
        assert_eq!(key("ｐｈｙｓｉｃｓ"), key("physics"));
        assert_ne!(key("physics"), key("chemistry"));
    }
}

//! Rules for names a user types: participant names and room names.

/// Longest participant name, in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// Longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = 48;

/// Checks a display name: 1 to 32 characters after trimming, letters, digits, spaces and
/// `-_.'`, no control characters. Returns the trimmed name or a message for the user.
pub fn participant_name(name: &str) -> Result<&str, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("Please enter a name.".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "The name is too long: at most {MAX_NAME_CHARS} characters."
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | '\'')))
    {
        return Err(format!(
            "The name may not contain {c:?}: use letters, digits, spaces and - _ . '"
        ));
    }
    Ok(name)
}

/// Checks a room name: 1 to 48 characters from letters, digits, `-` and `_`, so it fits
/// in a URL path (`/r/<room>`) unescaped. Room names are case-sensitive.
pub fn room_name(room: &str) -> Result<&str, String> {
    let room = room.trim();
    if room.is_empty() {
        return Err("Please enter a room name.".into());
    }
    if room.chars().count() > MAX_ROOM_CHARS {
        return Err(format!(
            "The room name is too long: at most {MAX_ROOM_CHARS} characters."
        ));
    }
    if let Some(c) = room
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_')))
    {
        return Err(format!(
            "The room name may not contain {c:?}: use letters, digits, - and _"
        ));
    }
    Ok(room)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(participant_name("  Ada Lovelace "), Ok("Ada Lovelace"));
        assert_eq!(participant_name("Zoë O'Neil"), Ok("Zoë O'Neil"));
        assert!(participant_name("").is_err());
        assert!(participant_name("   ").is_err());
        assert!(participant_name("<script>").is_err());
        assert!(participant_name("a\u{0}b").is_err());
        assert!(participant_name(&"x".repeat(33)).is_err());
        assert!(participant_name(&"é".repeat(32)).is_ok());
    }

    #[test]
    fn rooms() {
        assert_eq!(room_name("physics-101"), Ok("physics-101"));
        assert!(room_name("a/b").is_err());
        assert!(room_name("a b").is_err());
        assert!(room_name("..").is_err());
        assert!(room_name(&"r".repeat(49)).is_err());
    }
}

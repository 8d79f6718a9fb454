//! Escaping of untrusted bytes (file names, link targets, shebang lines, loader paths) before
//! they reach a terminal, a log file or JSON.
//!
//! One rule everywhere, so the text and JSON renderings of a diagnosis agree: printable UTF-8
//! passes unchanged; a backslash becomes `\\`; every byte that is not valid UTF-8 becomes `\xHH`;
//! control characters (C0, DEL, C1) and the invisible format characters that can reorder or hide
//! text on a terminal (bidi overrides and isolates, zero-width characters, BOM) become `\u{XXXX}`,
//! except that tab, CR and LF are written `\t`, `\r`, `\n`, which is what a user hunting a
//! CRLF shebang needs to see.

/// Escape arbitrary bytes into a printable, terminal-safe string.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

/// Escape an already valid string with the same rule as [`escape_bytes`].
pub fn escape_str(s: &str) -> String {
    escape_bytes(s.as_bytes())
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\n' => out.push_str("\\n"),
        c if is_hidden(c) => out.push_str(&format!("\\u{{{:04X}}}", c as u32)),
        c => out.push(c),
    }
}

/// Characters that are invisible or change how the surrounding text is shown.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c as u32,
            0x00AD            // soft hyphen
            | 0x061C          // arabic letter mark
            | 0x180E          // mongolian vowel separator
            | 0x200B..=0x200F // zero-width space/joiners, LRM, RLM
            | 0x2028..=0x202E // line/paragraph separators, bidi embeddings and overrides
            | 0x2060..=0x206F // word joiner, invisible operators, bidi isolates
            | 0xFEFF          // byte-order mark / zero-width no-break space
            | 0xFFF9..=0xFFFB // interlinear annotation
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_utf8_is_unchanged() {
        assert_eq!(escape_bytes("/usr/bin/app-ü".as_bytes()), "/usr/bin/app-ü");
    }

    #[test]
    fn invalid_utf8_becomes_hex() {
        assert_eq!(escape_bytes(b"/bin/\xff\xfeapp"), "/bin/\\xFF\\xFEapp");
    }

    #[test]
    fn terminal_escapes_are_neutralised() {
        let s = escape_bytes(b"/bin/\x1b[31mred\x07");
        assert_eq!(s, "/bin/\\u{001B}[31mred\\u{0007}");
        assert!(!s.contains('\x1b'));
    }

    #[test]
    fn crlf_and_backslash_are_visible() {
        assert_eq!(escape_bytes(b"/bin/sh\r"), "/bin/sh\\r");
        assert_eq!(escape_bytes(b"a\\b"), "a\\\\b");
    }

    #[test]
    fn bidi_override_and_bom_are_escaped() {
        assert_eq!(escape_str("a\u{202E}b\u{FEFF}"), "a\\u{202E}b\\u{FEFF}");
    }

    #[test]
    fn escaping_is_injective_on_tricky_pairs() {
        // A literal "\xFF" text and a raw 0xFF byte must not render the same.
        assert_ne!(escape_bytes(b"\\xFF"), escape_bytes(b"\xff"));
    }
}

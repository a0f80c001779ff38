//! English and Simplified Chinese: the language setting, the window's text in Chinese,
//! and the CJK font Chinese needs.

use serde::{Deserialize, Serialize};

mod zh;

/// The languages of the window and the lessons.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    En,
    Zh,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::En, Language::Zh];

    /// The language's own name, as the language menu shows it once its script can be
    /// drawn.
    pub fn native_name(self) -> &'static str {
        match self {
            Language::En => "English",
            Language::Zh => "简体中文",
        }
    }

    /// The language's name in English, for a window that cannot draw its script yet.
    pub fn english_name(self) -> &'static str {
        match self {
            Language::En => "English",
            Language::Zh => "Chinese (Simplified)",
        }
    }
}

/// `english` in `language`: the English itself, or its Chinese from the table (the English
/// when the table has none).
pub fn tr(language: Language, english: &'static str) -> &'static str {
    match language {
        Language::En => english,
        Language::Zh => chinese(english).unwrap_or_else(|| {
            if let Ok(mut missed) = MISSED.lock() {
                missed.insert(english);
            }
            english
        }),
    }
}

/// Text asked for in Chinese that the table lacks, shown in English instead.
static MISSED: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Everything shown in English so far because the Chinese table lacks it (the window test
/// draws every part of the window in Chinese and expects none).
pub fn untranslated() -> Vec<&'static str> {
    MISSED
        .lock()
        .map(|m| m.iter().copied().collect())
        .unwrap_or_default()
}

/// The Chinese for `english`, if the table has it.
pub fn chinese(english: &str) -> Option<&'static str> {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static TABLE: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    TABLE
        .get_or_init(|| zh::ZH.iter().copied().collect())
        .get(english)
        .copied()
}

thread_local! {
    /// The language the window on this thread draws in, set at the start of every frame.
    static LANGUAGE: std::cell::Cell<Language> = const { std::cell::Cell::new(Language::En) };
}

/// Sets the language the window on this thread draws in (each window, and each test's
/// window, draws on its own thread).
pub fn set_thread_language(language: Language) {
    LANGUAGE.with(|l| l.set(language));
}

/// The language the window on this thread draws in.
pub fn thread_language() -> Language {
    LANGUAGE.with(|l| l.get())
}

/// `english` in the window's language: what every label, button and tooltip of the window
/// goes through.
pub fn t(english: &'static str) -> &'static str {
    tr(thread_language(), english)
}

/// A message template in the window's language, filled in.
pub fn tf(template: &'static str, args: &[&dyn std::fmt::Display]) -> String {
    fill(thread_language(), template, args)
}

/// A message template (`{}` for each argument, in order) in `language`, filled in.
pub fn fill(language: Language, template: &'static str, args: &[&dyn std::fmt::Display]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut parts = tr(language, template).split("{}").peekable();
    while let Some(part) = parts.next() {
        out.push_str(part);
        if parts.peek().is_some()
            && let Some(a) = args.next()
        {
            out.push_str(&a.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_each_text_once_and_templates_keep_their_arguments() {
        let mut seen = std::collections::HashSet::new();
        for (en, zh) in zh::ZH {
            assert!(seen.insert(*en), "{en:?} twice");
            assert_eq!(en.matches("{}").count(), zh.matches("{}").count(), "{en:?}");
            assert!(!zh.trim().is_empty(), "{en:?}");
        }
        assert_eq!(tr(Language::Zh, "Start"), "开始");
        assert_eq!(tr(Language::En, "Start"), "Start");
        assert_eq!(
            fill(Language::Zh, "epoch {} · step {}/{}", &[&"1.50", &7, &63]),
            tr(Language::Zh, "epoch {} · step {}/{}")
                .replacen("{}", "1.50", 1)
                .replacen("{}", "7", 1)
                .replacen("{}", "63", 1)
        );
        assert_eq!(fill(Language::En, "Error: {}", &[&"x"]), "Error: x");
    }
}

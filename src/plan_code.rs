//! A plan as one short line: the TOML deflated and written in URL-safe base64 behind a
//! version prefix (`spx1.`), so a plan fits in a chat message, a slide or a URL.

use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use thiserror::Error;

use crate::plan::ExperimentPlan;

/// What every plan string starts with; the number changes if the format ever does.
pub const PREFIX: &str = "spx1.";

/// The most TOML a plan string may unpack to: plans are a few kilobytes at most.
const MAX_TOML: u64 = 1 << 20;

/// A plan string that cannot be read.
#[derive(Debug, Error)]
pub enum PlanCodeError {
    #[error("not a plan string: it should start with {PREFIX:?}")]
    Prefix,
    #[error("a plan string of a newer version ({0:?}); this build reads {PREFIX:?}")]
    Version(String),
    #[error("damaged plan string: {0} (was it cut or changed when copied?)")]
    Damaged(String),
    #[error("the plan string holds no valid plan: {0}")]
    Plan(String),
}

/// The plan as one line: `spx1.` then the deflated TOML in URL-safe base64 (no padding).
pub fn encode(plan: &ExperimentPlan) -> String {
    let mut deflate = DeflateEncoder::new(Vec::new(), Compression::best());
    deflate
        .write_all(plan.to_toml().as_bytes())
        .expect("writing to memory cannot fail");
    let bytes = deflate.finish().expect("writing to memory cannot fail");
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The plan back from [`encode`]'s line (surrounding whitespace ignored).
pub fn decode(text: &str) -> Result<ExperimentPlan, PlanCodeError> {
    let text = text.trim();
    let Some(body) = text.strip_prefix(PREFIX) else {
        return match text.split_once('.') {
            Some((version, _)) if version.starts_with("spx") && version.len() <= 8 => {
                Err(PlanCodeError::Version(format!("{version}.")))
            }
            _ => Err(PlanCodeError::Prefix),
        };
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|e| PlanCodeError::Damaged(e.to_string()))?;
    let mut toml = String::new();
    DeflateDecoder::new(bytes.as_slice())
        .take(MAX_TOML + 1)
        .read_to_string(&mut toml)
        .map_err(|e| PlanCodeError::Damaged(e.to_string()))?;
    if toml.len() as u64 > MAX_TOML {
        return Err(PlanCodeError::Damaged(
            "it unpacks to more than a megabyte".into(),
        ));
    }
    ExperimentPlan::from_toml(&toml, "plan string").map_err(|e| PlanCodeError::Plan(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PRESETS;

    #[test]
    fn every_preset_round_trips_in_a_few_hundred_characters() {
        for (name, _) in PRESETS {
            let plan = ExperimentPlan::preset(name).unwrap();
            let code = encode(&plan);
            assert!(code.starts_with(PREFIX));
            assert!(code.len() <= 500, "{name}: {} characters", code.len());
            assert!(
                code[PREFIX.len()..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{name}: URL-safe"
            );
            assert_eq!(decode(&format!("  {code}\n")).unwrap(), plan, "{name}");
        }
    }

    #[test]
    fn damaged_strings_say_what_is_wrong() {
        let code = encode(&ExperimentPlan::preset("quick-demo").unwrap());
        let msg = |s: &str| decode(s).unwrap_err().to_string();
        assert!(msg("hello").contains("should start with \"spx1.\""));
        assert!(msg("spx2.AAAA").contains("newer version (\"spx2.\")"));
        assert!(msg(&code[..code.len() / 2]).contains("damaged plan string"));
        assert!(msg(&format!("{code}!")).contains("damaged plan string"));
        // valid deflate, but not a plan
        let mut deflate = DeflateEncoder::new(Vec::new(), Compression::best());
        deflate.write_all(b"model = 42").unwrap();
        let not_a_plan = format!(
            "{PREFIX}{}",
            URL_SAFE_NO_PAD.encode(deflate.finish().unwrap())
        );
        assert!(msg(&not_a_plan).contains("holds no valid plan"));
    }
}

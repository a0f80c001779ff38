//! The CJK font Chinese needs: egui's own fonts have no Chinese glyphs, so one installed
//! on the system is added as a fallback when Chinese is chosen.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;

/// System fonts with Chinese glyphs, best first: the file and the face in it (Noto's
/// collection holds Japanese, Korean, Simplified and Traditional Chinese; face 2 is
/// Simplified Chinese).
pub const CJK_FONTS: &[(&str, u32)] = &[
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    (
        "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
        0,
    ),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    (
        "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
        0,
    ),
];

/// What the window says when Chinese is asked for and no font has its glyphs.
pub const NO_CJK_FONT: &str = "Chinese needs a CJK font and none is installed (Debian: apt install fonts-noto-cjk, or fonts-wqy-zenhei); staying in English.";

/// The first of `candidates` that exists.
pub fn find_cjk_font(candidates: &[(&str, u32)]) -> Option<(PathBuf, u32)> {
    candidates
        .iter()
        .find(|(path, _)| Path::new(path).is_file())
        .map(|(path, index)| (PathBuf::from(path), *index))
}

/// Adds the first CJK font found to egui's fonts, after its own (so Latin text keeps its
/// look). Errors say what to install.
pub fn install_cjk_font(
    ctx: &egui::Context,
    candidates: &[(&str, u32)],
) -> Result<PathBuf, String> {
    let (path, index) = find_cjk_font(candidates).ok_or_else(|| NO_CJK_FONT.to_string())?;
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("{}: cannot read the CJK font: {e}", path.display()))?;
    let mut fonts = egui::FontDefinitions::default();
    fonts.font_data.insert(
        "cjk".into(),
        Arc::new(egui::FontData::from_blob(Arc::new(bytes), index)),
    );
    for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
        fonts.families.entry(family).or_default().push("cjk".into());
    }
    ctx.set_fonts(fonts);
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_font_that_exists_is_taken() {
        let dir = std::env::temp_dir().join(format!("spx-fonts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let present = dir.join("b.ttc");
        std::fs::write(&present, b"font").unwrap();
        let missing = dir.join("a.ttc");
        let (a, b) = (missing.to_str().unwrap(), present.to_str().unwrap());
        assert_eq!(find_cjk_font(&[(a, 2), (b, 1)]), Some((present.clone(), 1)));
        assert_eq!(find_cjk_font(&[(a, 2)]), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! Image-folder datasets: `PATH/train/CLASS/*.png|jpg` and `PATH/test/CLASS/*`, any size,
//! grey or colour, each image turned grey or RGB and resized to the network's input. The
//! classes are the sorted folder names under `train/`.
//!
//! A file's header is checked before it is decoded: no image may claim more pixels than
//! its compressed bytes can hold (deflate and JPEG both stay far under 1,100 to 1), so a
//! damaged or hostile header is an error, not an allocation.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{ImageReader, Limits};

use super::dataset::{Dataset, Split};
use super::idx::DataError;

/// Largest side accepted.
const MAX_SIDE: u32 = 8192;
/// Pixels a byte of a compressed file may hold at most.
const MAX_EXPANSION: u64 = 1_100;

fn bad(path: &Path, reason: String) -> DataError {
    DataError::Image {
        path: path.into(),
        reason,
    }
}

/// Decodes one PNG or JPEG and returns its pixels resized to `[c, h, w]` (grey when `c`
/// is 1, RGB when 3), channel-major.
pub fn decode_image(
    path: &Path,
    bytes: &[u8],
    [c, h, w]: [usize; 3],
) -> Result<Vec<u8>, DataError> {
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| bad(path, e.to_string()))
    };
    let (width, height) = reader()?
        .into_dimensions()
        .map_err(|e| bad(path, e.to_string()))?;
    let claimed = width as u64 * height as u64 * 4;
    if width > MAX_SIDE
        || height > MAX_SIDE
        || claimed > MAX_EXPANSION * bytes.len() as u64 + 65_536
    {
        return Err(bad(
            path,
            format!(
                "its header claims {width} x {height} pixels, more than its {} bytes can hold",
                bytes.len()
            ),
        ));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(claimed + 65_536);
    let mut reader = reader()?;
    reader.limits(limits);
    let image = reader.decode().map_err(|e| bad(path, e.to_string()))?;
    let (w32, h32) = (w as u32, h as u32);
    let planes: Vec<Vec<u8>> = match c {
        1 => {
            let grey = image::imageops::resize(&image.to_luma8(), w32, h32, FilterType::Triangle);
            vec![grey.into_raw()]
        }
        3 => {
            let rgb = image::imageops::resize(&image.to_rgb8(), w32, h32, FilterType::Triangle);
            let raw = rgb.into_raw();
            (0..3)
                .map(|ch| raw.iter().skip(ch).step_by(3).copied().collect())
                .collect()
        }
        other => {
            return Err(bad(
                path,
                format!("the network takes {other} channels; images give 1 (grey) or 3 (colour)"),
            ));
        }
    };
    Ok(planes.concat())
}

/// Whether `dir` looks like an image-folder dataset.
pub fn is_image_folder(dir: &Path) -> bool {
    dir.join("train").is_dir() && dir.join("test").is_dir()
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|cause| DataError::Io {
        path: dir.into(),
        cause,
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    Ok(paths)
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// One split: every image under `dir/CLASS/` for each of `classes`.
fn split(dir: &Path, classes: &[String], shape: [usize; 3]) -> Result<Split, DataError> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for (label, class) in classes.iter().enumerate() {
        let class_dir = dir.join(class);
        if !class_dir.is_dir() {
            continue; // a class may have no test images
        }
        for path in sorted_entries(&class_dir)?
            .into_iter()
            .filter(|p| is_image(p))
        {
            let bytes = std::fs::read(&path).map_err(|cause| DataError::Io {
                path: path.clone(),
                cause,
            })?;
            pixels.extend(decode_image(&path, &bytes, shape)?);
            labels.push(label as u8);
        }
    }
    if labels.is_empty() {
        return Err(DataError::Empty { path: dir.into() });
    }
    Ok(Split::from_parts(pixels, labels, shape.iter().product()))
}

/// Loads `dir/train` and `dir/test`, every image resized to `shape`.
pub fn load_image_folder(dir: &Path, shape: [usize; 3]) -> Result<Dataset, DataError> {
    let train_dir = dir.join("train");
    let classes: Vec<String> = sorted_entries(&train_dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .collect();
    if classes.len() < 2 || classes.len() > 256 {
        return Err(bad(
            &train_dir,
            format!(
                "has {} class folders; a dataset needs 2 to 256",
                classes.len()
            ),
        ));
    }
    for entry in sorted_entries(&dir.join("test"))? {
        let name = entry
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if entry.is_dir() && !classes.iter().any(|c| c == name) {
            return Err(bad(
                &entry,
                format!("class {name:?} is not among the training classes {classes:?}"),
            ));
        }
    }
    Ok(Dataset {
        name: format!("{} ({} classes)", dir.display(), classes.len()),
        train: split(&train_dir, &classes, shape)?,
        test: split(&dir.join("test"), &classes, shape)?,
        shape,
        classes: classes.len(),
    })
}

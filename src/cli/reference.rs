//! Running PyTorch's reference scripts beside our own measurements.

use anyhow::{Context, Result, anyhow, bail};

/// Runs a reference script (`python script args...`) and returns the last JSON line it
/// printed.
pub fn run_reference(
    python: &str,
    script: &std::path::Path,
    args: &[String],
) -> Result<serde_json::Value> {
    let output = std::process::Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {python} {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "the PyTorch reference failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| anyhow!("the PyTorch reference printed no JSON: {stdout}"))
}

//! The analyses as files: sweeps as CSV (one `sweep` column in front) and as JSON.

use super::state::NamedSweep;

/// Every sweep's points in one CSV table, the sweep's name in the first column.
pub fn sweeps_csv(sweeps: &[NamedSweep]) -> String {
    let mut csv = String::from("sweep,");
    let mut header = true;
    for s in sweeps {
        for line in s.result.to_csv().lines() {
            if header {
                csv.push_str(line);
                csv.push('\n');
                header = false;
            } else if !line.starts_with("granularity,") {
                csv.push_str(&format!("{},{line}\n", s.name.replace(',', ";")));
            }
        }
    }
    csv
}

/// Every sweep as `{name, dense_accuracy, points}`, pretty-printed.
pub fn sweeps_json(sweeps: &[NamedSweep]) -> String {
    let sweeps: Vec<serde_json::Value> = sweeps
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "dense_accuracy": s.result.dense_accuracy,
                "points": s.result.points,
            })
        })
        .collect();
    serde_json::to_string_pretty(&sweeps).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::SweepPoint;
    use crate::train::analysis::SweepResult;

    fn sweep(name: &str, accuracy: f64) -> NamedSweep {
        NamedSweep {
            name: name.into(),
            visible: true,
            result: SweepResult {
                dense_accuracy: 0.95,
                points: vec![SweepPoint {
                    server: None,
                    granularity: "unstructured".into(),
                    criterion: "magnitude".into(),
                    target: 0.5,
                    sparsity: 0.5,
                    accuracy,
                }],
            },
        }
    }

    #[test]
    fn sweeps_share_one_header_and_keep_their_names() {
        let csv = sweeps_csv(&[sweep("a, first", 0.9), sweep("b", 0.8)]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert!(lines[0].starts_with("sweep,granularity,"), "{csv}");
        assert!(
            lines[1].starts_with("a; first,") && lines[1].ends_with("0.900000"),
            "{csv}"
        );
        assert!(lines[2].starts_with("b,"), "{csv}");
        let json: serde_json::Value =
            serde_json::from_str(&sweeps_json(&[sweep("b", 0.8)])).unwrap();
        assert_eq!(json[0]["name"], "b");
        assert_eq!(json[0]["points"][0]["accuracy"], 0.8);
    }
}

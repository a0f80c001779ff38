//! `run`: one plan trained to its end through a [`Worker`], shown as a progress bar and
//! one line per evaluation, or as JSON lines; then the saves it asks for and the summary.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::args::RunArgs;
use super::driving::await_event;
use crate::plan::ExperimentPlan;
use crate::train::{Command, EvalPhase, Event, Summary, Worker};

/// Trains one plan to the end through a [`Worker`] and reports it.
pub fn run(args: &RunArgs) -> Result<()> {
    let plan = args.plan.build()?;
    check_destinations(args)?;
    if let Some(path) = &args.save_plan {
        plan.save(path)
            .with_context(|| format!("cannot save the plan to {}", path.display()))?;
    }
    if args.print_plan {
        write!(std::io::stdout().lock(), "{}", plan.to_toml())?;
        return Ok(());
    }
    let worker = Worker::spawn(None);
    worker.send(Command::Start(Box::new(plan.clone())));
    let mut out = std::io::stdout().lock();
    let mut progress = RunProgress::new(&plan, args.json);
    let summary = loop {
        let event = match worker.recv_timeout(Duration::from_secs(3600)) {
            Ok(e) => e,
            Err(true) => bail!("the training worker stopped without a result"),
            Err(false) => continue,
        };
        if args.json && !matches!(event, Event::Finished { .. } | Event::Snapshot(_)) {
            writeln!(out, "{}", serde_json::to_string(&event)?)?;
        }
        if let Some(summary) = progress.show(event, &mut out)? {
            break summary;
        }
    };
    progress.finish();
    save_after(args, &worker)?;
    if args.json {
        let mut line = serde_json::to_value(&summary)?;
        line["event"] = json!("summary");
        writeln!(out, "{}", serde_json::to_string(&line)?)?;
    } else {
        print_summary(&mut out, &summary)?;
    }
    Ok(())
}

/// Every file `run` will write can be written, before any training.
fn check_destinations(args: &RunArgs) -> Result<()> {
    for (flag, path) in [
        ("--save-plan", &args.save_plan),
        ("--save-masks", &args.save_masks),
        ("--save-checkpoint", &args.save_checkpoint),
    ] {
        if let Some(path) = path {
            crate::check_destination(path)
                .with_context(|| format!("{flag}: cannot write {}", path.display()))?;
        }
    }
    Ok(())
}

/// The masks and the checkpoint the command line asked for, from the finished run.
fn save_after(args: &RunArgs, worker: &Worker) -> Result<()> {
    if let Some(path) = &args.save_masks {
        worker.send(Command::SaveMasks { path: path.clone() });
        await_event(
            worker,
            None,
            |_| {},
            |e| matches!(e, Event::MasksSaved { .. }),
        )?;
        if !args.json {
            eprintln!("masks saved to {}", path.display());
        }
    }
    if let Some(path) = &args.save_checkpoint {
        worker.send(Command::SaveCheckpoint {
            path: path.clone(),
            history_json: "{}".into(),
        });
        await_event(
            worker,
            None,
            |_| {},
            |e| matches!(e, Event::CheckpointSaved { .. }),
        )?;
        if !args.json {
            eprintln!("checkpoint saved to {}", path.display());
        }
    }
    Ok(())
}

/// What a person sees of a run in the terminal: the backend line, a progress bar with the
/// last accuracy, and one line per evaluation (nothing of it with `--json`).
struct RunProgress<'a> {
    plan: &'a ExperimentPlan,
    json: bool,
    bar: Option<ProgressBar>,
    last_accuracy: Option<f64>,
}

impl<'a> RunProgress<'a> {
    fn new(plan: &'a ExperimentPlan, json: bool) -> Self {
        Self {
            plan,
            json,
            bar: None,
            last_accuracy: None,
        }
    }

    /// Shows one event; the run's summary when it is the last, an error when the run
    /// failed.
    fn show(&mut self, event: Event, out: &mut impl Write) -> Result<Option<Summary>> {
        match event {
            Event::Started {
                backend,
                dataset,
                total_steps,
                ..
            } if !self.json => {
                eprintln!(
                    "{} on {dataset} | backend {} ({}){}",
                    self.plan.model,
                    backend.backend,
                    backend.device,
                    backend.note.map(|n| format!(": {n}")).unwrap_or_default()
                );
                self.start_bar(total_steps);
            }
            Event::Notice { message } if !self.json => match &self.bar {
                Some(b) => b.println(format!("note: {message}")),
                None => eprintln!("note: {message}"),
            },
            Event::Evaluation {
                step,
                epoch,
                accuracy,
                loss,
                sparsity,
                phase,
                subset,
                ..
            } => {
                self.last_accuracy = Some(accuracy);
                if !self.json {
                    let line =
                        evaluation_line(step, epoch, accuracy, loss, sparsity, phase, subset);
                    match &self.bar {
                        Some(b) => b.suspend(|| writeln!(out, "{line}"))?,
                        None => writeln!(out, "{line}")?,
                    }
                }
            }
            Event::Progress {
                step,
                epoch,
                loss,
                samples_per_s,
                sparsity,
                ..
            } => self.advance(step, format!("epoch {epoch:.1} loss {loss:.3} acc {} sparsity {sparsity:.3} {samples_per_s:.0} samples/s", self.accuracy_text())),
            Event::Error { error, .. } => {
                if let Some(b) = &self.bar {
                    b.abandon();
                }
                return Err(anyhow!("{error}"));
            }
            Event::Finished { summary, .. } => return Ok(Some(summary)),
            _ => {}
        }
        Ok(None)
    }

    /// The bar, once the run says how many steps it has; and why it is paced, if it is.
    fn start_bar(&mut self, total_steps: u64) {
        if let Some(pace) = self.plan.training.pace {
            eprintln!(
                "note: paced at {pace} steps/s, as the plan asks (so that a class can follow each cut); --pace 0 trains at full speed"
            );
        }
        let b = ProgressBar::new(total_steps);
        b.set_style(
            ProgressStyle::with_template("{bar:30.cyan/blue} {pos:>5}/{len} {msg}")
                .expect("valid template"),
        );
        self.bar = Some(b);
    }

    fn advance(&self, step: u64, message: String) {
        if let Some(b) = &self.bar {
            b.set_position(step);
            b.set_message(message);
        }
    }

    fn accuracy_text(&self) -> String {
        self.last_accuracy
            .map(|a| format!("{a:.4}"))
            .unwrap_or_else(|| "-".into())
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// One evaluation as `run` prints it: where the run was, the sparsity and the accuracy,
/// and which moment it measured on how much of the test split.
fn evaluation_line(
    step: u64,
    epoch: f64,
    accuracy: f64,
    loss: f64,
    sparsity: f64,
    phase: EvalPhase,
    subset: Option<usize>,
) -> String {
    let examples = subset.map_or_else(|| "whole test split".into(), |n| format!("{n} test images"));
    format!(
        "eval step {step:>6} epoch {epoch:>6.2} sparsity {sparsity:.3} accuracy {accuracy:.4} loss {loss:.4}  {} ({examples})",
        phase.describe()
    )
}

/// The final table: per-layer sparsity and dense vs pruned accuracy.
pub fn print_summary(out: &mut impl Write, s: &Summary) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<8} {:<18} {:<14} {:>7} {:>9}",
        "layer", "shape", "granularity", "target", "sparsity"
    )?;
    for l in &s.layers {
        let shape = format!("{:?}", l.shape);
        writeln!(
            out,
            "{:<8} {:<18} {:<14} {:>7.3} {:>9.4}",
            l.name, shape, l.granularity, l.target, l.sparsity
        )?;
    }
    writeln!(out, "overall sparsity {:.4}", s.sparsity)?;
    writeln!(
        out,
        "dense accuracy {:.4} | pruned accuracy {:.4} ({:+.2} points)",
        s.dense_accuracy,
        s.final_accuracy,
        100.0 * (s.final_accuracy - s.dense_accuracy)
    )?;
    writeln!(
        out,
        "{} steps in {:.1} s ({:.1} s evaluating), {:.0} training samples/s on {} ({})",
        s.steps, s.wall_s, s.eval_s, s.train_samples_per_s, s.backend, s.device
    )
}

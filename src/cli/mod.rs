//! The headless front end: the same worker as the window, with a progress bar or JSON lines.

pub mod analysis;
pub mod args;
pub mod bench;
pub mod driving;
pub mod export;
pub mod infer;
pub mod inspect;
pub mod plan_args;
pub mod reference;
pub mod report;
pub mod serve;

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

pub use args::{Cli, CliCommand, PlanArgs, PlanCommand, RunArgs, WindowArgs};
pub use bench::BenchArgs;

use crate::plan::{ExperimentPlan, PRESETS};
use crate::train::{Command, EvalPhase, Event, Summary, Worker};

/// Runs the parsed command line.
pub fn main(cli: Cli) -> Result<()> {
    match cli.command {
        Some(CliCommand::Run(args)) => run(&args),
        Some(CliCommand::Bench(args)) => bench::bench(&args),
        Some(CliCommand::Sensitivity(args)) => analysis::sensitivity(&args),
        Some(CliCommand::Sweep(args)) => analysis::sweep(&args),
        Some(CliCommand::Export(args)) => export::export(&args),
        Some(CliCommand::BenchInfer(args)) => infer::bench_infer(&args),
        Some(CliCommand::Inspect(args)) => inspect::inspect(&args),
        Some(CliCommand::Presets { name }) => presets(name.as_deref()),
        Some(CliCommand::Plan(command)) => plan_command(command),
        Some(CliCommand::Serve(args)) => serve::serve(&args),
        Some(CliCommand::Lessons { json, language }) => lessons(json, language),
        None => crate::app::run_window(crate::app::AppOptions {
            // a damaged string is an error here, before any window opens
            plan_value: cli
                .window
                .plan_string
                .as_deref()
                .map(crate::plan_code::decode)
                .transpose()
                .context("--plan-string")?,
            // an unknown lesson is an error here too
            lesson: cli
                .window
                .lesson
                .as_deref()
                .map(crate::lessons::find)
                .transpose()?,
            language: cli.window.language,
            preset: cli.window.preset,
            plan: cli.window.plan,
            autostart: cli.window.autostart,
            frame_stats: cli.window.frame_stats,
            exit_after: cli.window.exit_after,
            renderer: cli.window.renderer,
        }),
    }
}

fn lessons(json: bool, language: crate::i18n::Language) -> Result<()> {
    let lessons = crate::lessons::all()?;
    let mut out = std::io::stdout().lock();
    if json {
        let list: Vec<_> = lessons
            .iter()
            .map(|l| {
                json!({
                    "id": l.id,
                    "title": l.title.get(language),
                    "preset": l.preset,
                    "steps": l.steps.iter().map(|s| s.text(language)).collect::<Vec<_>>(),
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(());
    }
    for (i, l) in lessons.iter().enumerate() {
        writeln!(
            out,
            "{:>2}. {:<18} {}  [{}, {} steps]",
            i + 1,
            l.id,
            l.title.get(language),
            l.preset,
            l.steps.len()
        )?;
    }
    writeln!(out, "open one with: sparsity-explorer --lesson ID")?;
    Ok(())
}

fn plan_command(command: PlanCommand) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        PlanCommand::Encode { file } => writeln!(
            out,
            "{}",
            crate::plan_code::encode(&ExperimentPlan::load(&file)?)
        )?,
        PlanCommand::Decode { string } => {
            write!(out, "{}", crate::plan_code::decode(&string)?.to_toml())?
        }
    }
    Ok(())
}

fn presets(name: Option<&str>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match name {
        // the network written out as its stack of layers, ready to edit
        Some(n) => write!(
            out,
            "{}",
            ExperimentPlan::preset(n)?
                .with_layers_written_out()?
                .to_toml()
        )?,
        None => {
            for (n, _) in PRESETS {
                let plan = ExperimentPlan::preset(n)?;
                writeln!(out, "{n:16} {}", plan.name)?;
            }
        }
    }
    Ok(())
}

/// Trains one plan to the end through a [`Worker`] and reports it.
pub fn run(args: &RunArgs) -> Result<()> {
    let plan = args.plan.build()?;
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
    let mut bar: Option<ProgressBar> = None;
    let mut last_accuracy: Option<f64> = None;
    let summary = loop {
        let event = match worker.recv_timeout(Duration::from_secs(3600)) {
            Ok(e) => e,
            Err(true) => bail!("the training worker stopped without a result"),
            Err(false) => continue,
        };
        if args.json && !matches!(event, Event::Finished { .. } | Event::Snapshot(_)) {
            writeln!(out, "{}", serde_json::to_string(&event)?)?;
        }
        match event {
            Event::Started {
                backend,
                dataset,
                total_steps,
                ..
            } if !args.json => {
                eprintln!(
                    "{} on {dataset} | backend {} ({}){}",
                    plan.model,
                    backend.backend,
                    backend.device,
                    backend.note.map(|n| format!(": {n}")).unwrap_or_default()
                );
                if let Some(pace) = plan.training.pace {
                    eprintln!(
                        "note: paced at {pace} steps/s, as the plan asks (so that a class can follow each cut); --pace 0 trains at full speed"
                    );
                }
                let b = ProgressBar::new(total_steps);
                b.set_style(
                    ProgressStyle::with_template("{bar:30.cyan/blue} {pos:>5}/{len} {msg}")
                        .expect("valid template"),
                );
                bar = Some(b);
            }
            Event::Notice { message } if !args.json => match &bar {
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
                last_accuracy = Some(accuracy);
                if !args.json {
                    let line =
                        evaluation_line(step, epoch, accuracy, loss, sparsity, phase, subset);
                    match &bar {
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
            } => {
                if let Some(b) = &bar {
                    b.set_position(step);
                    b.set_message(format!(
                        "epoch {epoch:.1} loss {loss:.3} acc {} sparsity {sparsity:.3} {samples_per_s:.0} samples/s",
                        last_accuracy.map(|a| format!("{a:.4}")).unwrap_or_else(|| "-".into())
                    ));
                }
            }
            Event::Error { error, .. } => {
                if let Some(b) = &bar {
                    b.abandon();
                }
                return Err(anyhow!("{error}"));
            }
            Event::Finished { summary, .. } => break summary,
            _ => {}
        }
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Some(path) = &args.save_masks {
        worker.send(Command::SaveMasks { path: path.clone() });
        loop {
            match worker.recv_timeout(Duration::from_secs(600)) {
                Ok(Event::MasksSaved { .. }) => break,
                Ok(Event::Error { error, .. }) => bail!("{error}"),
                Ok(_) => {}
                Err(_) => bail!("the training worker did not save the masks"),
            }
        }
        if !args.json {
            eprintln!("masks saved to {}", path.display());
        }
    }
    if let Some(path) = &args.save_checkpoint {
        worker.send(Command::SaveCheckpoint {
            path: path.clone(),
            history_json: "{}".into(),
        });
        loop {
            match worker.recv_timeout(Duration::from_secs(600)) {
                Ok(Event::CheckpointSaved { .. }) => break,
                Ok(Event::Error { error, .. }) => bail!("{error}"),
                Ok(_) => {}
                Err(_) => bail!("the training worker did not save the checkpoint"),
            }
        }
        if !args.json {
            eprintln!("checkpoint saved to {}", path.display());
        }
    }
    if args.json {
        let mut line = serde_json::to_value(&summary)?;
        line["event"] = json!("summary");
        writeln!(out, "{}", serde_json::to_string(&line)?)?;
    } else {
        print_summary(&mut out, &summary)?;
    }
    Ok(())
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

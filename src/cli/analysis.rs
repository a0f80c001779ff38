//! `sensitivity` and `sweep`: analyses of a trained model, from a checkpoint or from a
//! dense model trained first.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::driving::{await_event, obtain_model};
use super::plan_args::{PlanArgs, parse_list};
use crate::plan::ExperimentPlan;
use crate::prune::{At, Criterion, Granularity, Schedule};
use crate::train::analysis::{
    DEFAULT_LEVELS, DEFAULT_TARGETS, default_granularities, parse_levels,
};
use crate::train::{
    Command, Event, SensitivityRequest, SensitivityResult, SweepRequest, SweepResult, Worker,
};

/// Where the analysed model comes from.
#[derive(Debug, Args)]
pub struct ModelSource {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Analyse this checkpoint (from the window or `run --save-checkpoint`) instead of
    /// training a dense model first.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Epochs of dense training when no checkpoint is given (default: until the plan's
    /// pruning would begin, or all its epochs).
    #[arg(long)]
    pub dense_epochs: Option<u32>,
    /// JSON lines on stdout; the last one is the result.
    #[arg(long)]
    pub json: bool,
    /// The result as CSV on stdout.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct SensitivityArgs {
    #[command(flatten)]
    pub source: ModelSource,
    /// Sparsity levels, comma separated.
    #[arg(long)]
    pub levels: Option<String>,
    /// Accuracy drop tolerated in the table, in points.
    #[arg(long, default_value_t = 1.0)]
    pub tolerance: f64,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub source: ModelSource,
    /// Target sparsities, comma separated.
    #[arg(long)]
    pub targets: Option<String>,
    /// Granularities, comma separated (unstructured, 2:4, block:4x4, channel, ...).
    #[arg(long)]
    pub granularities: Option<String>,
    /// Criteria to compare, comma separated (magnitude, random, taylor, movement, snip,
    /// wanda, synflow); the plan's when omitted.
    #[arg(long, value_enum, value_delimiter = ',', ignore_case = true)]
    pub criteria: Vec<Criterion>,
    /// Training budget per point, in epochs (pruning over the first half).
    #[arg(long, default_value_t = 3.0)]
    pub budget: f64,
}

impl ModelSource {
    /// The servers of `--remote` when a checkpoint is analysed: the checkpoint keeps its
    /// own backend, so `--remote` spreads the analysis over the servers instead.
    fn servers_for_checkpoint(&self) -> Vec<String> {
        match (&self.checkpoint, &self.plan.remote) {
            (Some(_), Some(list)) => crate::train::backend::parse_servers(list),
            _ => Vec::new(),
        }
    }
}

/// The plan's dense phase: no pruning, for `epochs` or until pruning would begin.
fn dense_plan(plan: &ExperimentPlan, epochs: Option<u32>) -> ExperimentPlan {
    let mut dense = plan.clone();
    let spe = plan.steps_per_epoch(crate::data::BUILTIN_TRAIN).max(1);
    let begin_epoch = match plan.pruning.schedule.begin() {
        At::Epoch { epoch } => epoch.ceil() as u32,
        At::Step(s) => s.div_ceil(spe) as u32,
    };
    dense.training.epochs = epochs.unwrap_or(if begin_epoch > 0 {
        begin_epoch
    } else {
        plan.training.epochs
    });
    dense.pruning.schedule = Schedule::OneShot {
        target: 0.0,
        at: At::Step(u64::MAX),
    };
    dense
}

/// Gets a trained model into the worker: a checkpoint, or the plan's dense phase.
fn prepare(worker: &Worker, source: &ModelSource, out: &mut impl Write) -> Result<()> {
    let quiet = source.json || source.csv;
    let dense = || {
        let plan = dense_plan(&source.plan.build()?, source.dense_epochs);
        if !quiet {
            eprintln!(
                "training {} densely for {} epochs first",
                plan.model, plan.training.epochs
            );
        }
        Ok(plan)
    };
    let echo: Option<&mut dyn Write> = if source.json { Some(out) } else { None };
    obtain_model(worker, source.checkpoint.as_deref(), dense, echo)
}

fn bar(total: u64, quiet: bool) -> Option<ProgressBar> {
    (!quiet).then(|| {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} {msg}").expect("valid"),
        );
        b
    })
}

pub fn sensitivity(args: &SensitivityArgs) -> Result<()> {
    let levels = match &args.levels {
        Some(t) => parse_levels(t).map_err(|e| anyhow!("--levels: {e}"))?,
        None => DEFAULT_LEVELS.to_vec(),
    };
    let plan = args.source.plan.build()?;
    let worker = Worker::spawn(None);
    let mut out = std::io::stdout().lock();
    prepare(&worker, &args.source, &mut out)?;
    worker.send(Command::Sensitivity(SensitivityRequest {
        levels,
        granularity: plan.pruning.granularity,
        criterion: plan.pruning.criterion,
        servers: args.source.servers_for_checkpoint(),
    }));
    let quiet = args.source.json || args.source.csv;
    let progress = bar(0, quiet);
    let done = await_event(
        &worker,
        None,
        |e| {
            if let (
                Some(b),
                Event::SensitivityProgress {
                    layer,
                    level,
                    done,
                    total,
                    ..
                },
            ) = (&progress, e)
            {
                b.set_length(*total as u64);
                b.set_position(*done as u64);
                b.set_message(format!("{layer} at {level}"));
            }
        },
        |e| matches!(e, Event::SensitivityFinished { .. }),
    )?;
    let Event::SensitivityFinished { result, cancelled } = done else {
        unreachable!("waited for the result")
    };
    if let Some(b) = progress {
        b.finish_and_clear();
    }
    print_sensitivity(&mut out, &result, args)?;
    stopped_early(&worker, cancelled)
}

/// The sensitivity matrix as JSON, CSV or a table, as the command line asked.
fn print_sensitivity(
    out: &mut impl Write,
    result: &SensitivityResult,
    args: &SensitivityArgs,
) -> Result<()> {
    if args.source.json {
        let line = json!({
            "event": "sensitivity",
            "dense_accuracy": result.dense_accuracy,
            "levels": result.levels,
            "granularity": result.granularity,
            "layers": result.layers.iter().map(|l| json!({
                "name": l.name,
                "accuracy": l.accuracy,
                "note": l.note,
                "sparsity": l.sparsity,
                "already_pruned": result.levels.iter().map(|&v| l.already_pruned(v)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{line}")?;
    } else if args.source.csv {
        write!(out, "{}", result.to_csv())?;
    } else {
        sensitivity_table(out, result, args.tolerance)?;
    }
    Ok(())
}

/// The matrix for a person: one row per layer, the largest level within `tolerance`
/// points of the unpruned accuracy, and the levels a layer had already reached marked.
fn sensitivity_table(
    out: &mut impl Write,
    result: &SensitivityResult,
    tolerance: f64,
) -> Result<()> {
    writeln!(
        out,
        "accuracy with each layer pruned alone ({}); unpruned {:.4}",
        result.granularity, result.dense_accuracy
    )?;
    write!(out, "{:<8}", "layer")?;
    for l in &result.levels {
        write!(out, " {:>6.2}", l)?;
    }
    writeln!(out, "   within {:.1} point(s)", tolerance)?;
    let tolerated = result.tolerated(tolerance / 100.0);
    for (layer, (_, level)) in result.layers.iter().zip(&tolerated) {
        write!(out, "{:<8}", layer.name)?;
        for (a, &level) in layer.accuracy.iter().zip(&result.levels) {
            // a level the layer had already reached: marked, it measures nothing new
            let mark = if layer.already_pruned(level) {
                "*"
            } else {
                " "
            };
            match a {
                Some(a) => write!(out, "{mark}{:>6.4}", a)?,
                None => write!(out, "{mark}{:>6}", "-")?,
            }
        }
        match (level, &layer.note) {
            (_, Some(note)) => writeln!(out, "   {note}")?,
            (Some(l), None) => writeln!(out, "   up to {:.0}%", 100.0 * l)?,
            (None, None) => writeln!(out, "   none")?,
        }
    }
    if let Some(l) = result.layers.iter().find(|l| l.sparsity > 0.0) {
        writeln!(
            out,
            "* already pruned: the layer was at that sparsity or more before the analysis (e.g. {} at {:.0}%), so pruning it there changes nothing",
            l.name,
            100.0 * l.sparsity
        )?;
    }
    Ok(())
}

/// Nothing here cancels an analysis: one that stopped early was ended by an error, said
/// right after (what was measured is printed first).
fn stopped_early(worker: &Worker, cancelled: bool) -> Result<()> {
    if !cancelled {
        return Ok(());
    }
    match worker.recv_timeout(std::time::Duration::from_secs(5)) {
        Ok(Event::Error { error, .. }) => Err(anyhow!("{error}")),
        _ => Err(anyhow!("the analysis stopped before its end")),
    }
}

pub fn sweep(args: &SweepArgs) -> Result<()> {
    let targets = match &args.targets {
        Some(t) => parse_levels(t).map_err(|e| anyhow!("--targets: {e}"))?,
        None => DEFAULT_TARGETS.to_vec(),
    };
    let granularities: Vec<Granularity> = match &args.granularities {
        Some(t) => parse_list(t, "--granularities")?,
        None => default_granularities(),
    };
    if !(args.budget.is_finite() && args.budget > 0.0) {
        bail!(
            "--budget must be a positive number of epochs, found {}",
            args.budget
        );
    }
    let worker = Worker::spawn(None);
    let mut out = std::io::stdout().lock();
    prepare(&worker, &args.source, &mut out)?;
    let servers = args.source.servers_for_checkpoint();
    worker.send(Command::Sweep(SweepRequest {
        targets,
        granularities,
        criteria: args.criteria.clone(),
        fine_tune_epochs: args.budget,
        servers,
    }));
    let quiet = args.source.json || args.source.csv;
    let progress = bar(0, quiet);
    let mut write_error = None;
    let done = await_event(
        &worker,
        None,
        |e| {
            if let Event::SweepProgress {
                point,
                done,
                total,
                remaining_s,
            } = e
            {
                if args.source.json && write_error.is_none() {
                    let line = json!({"event": "sweep-point", "point": point, "done": done, "total": total});
                    write_error = writeln!(out, "{line}").err();
                }
                if let Some(b) = &progress {
                    b.set_length(*total as u64);
                    b.set_position(*done as u64);
                    b.set_message(format!(
                        "{} at {:.2}: {:.4}{}",
                        point.granularity,
                        point.target,
                        point.accuracy,
                        remaining_s
                            .map(|r| format!(", about {r:.0} s left"))
                            .unwrap_or_default()
                    ));
                }
            }
        },
        |e| matches!(e, Event::SweepFinished { .. }),
    )?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    let Event::SweepFinished { result, cancelled } = done else {
        unreachable!("waited for the result")
    };
    if let Some(b) = progress {
        b.finish_and_clear();
    }
    print_sweep(&mut out, &result, args)?;
    stopped_early(&worker, cancelled)
}

/// The sweep's points as JSON, CSV or a table, as the command line asked.
fn print_sweep(out: &mut impl Write, result: &SweepResult, args: &SweepArgs) -> Result<()> {
    if args.source.json {
        writeln!(
            out,
            "{}",
            json!({"event": "sweep", "dense_accuracy": result.dense_accuracy, "points": result.points})
        )?;
    } else if args.source.csv {
        write!(out, "{}", result.to_csv())?;
    } else {
        writeln!(out, "starting model accuracy {:.4}", result.dense_accuracy)?;
        writeln!(
            out,
            "{:<14} {:<10} {:>7} {:>9} {:>9}",
            "granularity", "criterion", "target", "sparsity", "accuracy"
        )?;
        for p in &result.points {
            writeln!(
                out,
                "{:<14} {:<10} {:>7.2} {:>9.4} {:>9.4}",
                p.granularity, p.criterion, p.target, p.sparsity, p.accuracy
            )?;
        }
    }
    Ok(())
}

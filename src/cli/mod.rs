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
pub mod run;
pub mod serve;

use std::io::Write;

use anyhow::{Context, Result};
use serde_json::json;

pub use args::{Cli, CliCommand, PlanArgs, PlanCommand, RunArgs, WindowArgs};
pub use bench::BenchArgs;

use crate::plan::{ExperimentPlan, PRESETS};

/// Runs the parsed command line.
pub fn main(cli: Cli) -> Result<()> {
    match cli.command {
        Some(CliCommand::Run(args)) => run::run(&args),
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

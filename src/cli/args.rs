//! The command line: the subcommands and the options of the window. Each subcommand's own
//! options live with it; every one that trains takes [`PlanArgs`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use super::plan_args::PlanArgs;

#[derive(Debug, Parser)]
#[command(
    name = "sparsity-explorer",
    version,
    about = "Train small networks on MNIST-like digits and watch them being pruned",
    long_about = "Train small networks on MNIST-like digits and watch them being pruned.\n\n\
                  With no subcommand, opens the window."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<CliCommand>,
    #[command(flatten)]
    pub window: WindowArgs,
}

/// Options of the window (no subcommand).
#[derive(Debug, Args, Default)]
pub struct WindowArgs {
    /// Open with this preset instead of the last plan.
    #[arg(long)]
    pub preset: Option<String>,
    /// Open with this plan file (TOML) instead of the last plan.
    #[arg(long, value_name = "PLAN.toml", conflicts_with = "preset")]
    pub plan: Option<PathBuf>,
    /// The window's language (remembered from the last time when not given).
    #[arg(long, value_enum)]
    pub language: Option<crate::i18n::Language>,
    /// Open on this lesson (see `lessons`), with its preset loaded.
    #[arg(long, value_name = "ID")]
    pub lesson: Option<String>,
    /// Open with the plan in this one-line string (`plan encode` makes one).
    #[arg(long, value_name = "STRING", conflicts_with_all = ["preset", "plan"])]
    pub plan_string: Option<String>,
    /// Start training as soon as the window opens.
    #[arg(long)]
    pub autostart: bool,
    /// Record how long each frame takes to build; print p50/p95 (JSON) on exit.
    #[arg(long)]
    pub frame_stats: bool,
    /// How the window is drawn: glow (OpenGL; falls back to wgpu if it cannot start) or wgpu.
    #[arg(long, value_enum, default_value_t = crate::app::Renderer::Glow)]
    pub renderer: crate::app::Renderer,
    /// Close the window after this many seconds (demos, measurements).
    #[arg(long, value_name = "SECONDS")]
    pub exit_after: Option<f64>,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Train and prune from a plan, a preset and flags; print progress and a summary.
    Run(Box<RunArgs>),
    /// Measure training throughput (samples/s), optionally against PyTorch's reference.
    Bench(super::bench::BenchArgs),
    /// Prune each layer alone at each level and measure the accuracy (which layers
    /// tolerate pruning).
    Sensitivity(Box<super::analysis::SensitivityArgs>),
    /// Accuracy against sparsity for several targets and granularities, each fine-tuned
    /// from the same model with the same budget.
    Sweep(Box<super::analysis::SweepArgs>),
    /// Write the model as sparse files (f32 and int8) and report their sizes.
    Export(Box<super::export::ExportArgs>),
    /// Time dense against sparse inference on the CPU.
    BenchInfer(Box<super::infer::BenchInferArgs>),
    /// Describe a sparse model file: header, model, plan, and each parameter's shape,
    /// storage, granularity and sparsity.
    Inspect(super::inspect::InspectArgs),
    /// List the built-in presets, or print one as TOML.
    Presets {
        /// Print this preset's plan.
        name: Option<String>,
    },
    /// Serve this machine's device to other machines' runs (--backend remote there).
    Serve(super::serve::ServeArgs),
    /// A plan as one short line to share, and back.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// List the lessons of the pruning course: id, title, preset and steps.
    Lessons {
        /// One JSON array.
        #[arg(long)]
        json: bool,
        #[arg(long, value_enum, default_value_t = crate::i18n::Language::En)]
        language: crate::i18n::Language,
    },
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Print a plan file (TOML) as one URL-safe line.
    Encode {
        #[arg(value_name = "FILE.toml")]
        file: PathBuf,
    },
    /// Print the plan (TOML) a line from `plan encode` holds.
    Decode {
        #[arg(value_name = "STRING")]
        string: String,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// JSON lines on stdout, one per event; the last is the summary.
    #[arg(long)]
    pub json: bool,
    /// Save the final masks (uint8, PyTorch layout) as safetensors.
    #[arg(long, value_name = "FILE")]
    pub save_masks: Option<PathBuf>,
    /// Save a checkpoint of the finished run (for `sensitivity`, `sweep` or the window).
    #[arg(long, value_name = "FILE")]
    pub save_checkpoint: Option<PathBuf>,
    /// Save the resolved plan as TOML.
    #[arg(long, value_name = "FILE")]
    pub save_plan: Option<PathBuf>,
    /// Print the resolved plan and exit.
    #[arg(long)]
    pub print_plan: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelKind;
    use crate::plan::BackendChoice;
    use crate::prune::{Criterion, ScheduleKind, Scope};

    #[test]
    fn plain_choices_parse_through_clap_with_their_aliases() {
        let cli = Cli::try_parse_from([
            "sparsity-explorer",
            "run",
            "--model",
            "lenet300",
            "--backend",
            "CPU",
            "--schedule",
            "agp",
            "--criterion",
            "random",
            "--scope",
            "per-layer",
        ])
        .unwrap();
        let Some(CliCommand::Run(run)) = cli.command else {
            panic!("a run")
        };
        let p = &run.plan;
        assert_eq!(p.model, Some(ModelKind::Mlp));
        assert_eq!(p.backend, Some(BackendChoice::Flex));
        assert_eq!(p.schedule, Some(ScheduleKind::Polynomial));
        assert_eq!(p.criterion, Some(Criterion::Random));
        assert_eq!(p.scope, Some(Scope::Layer));
        let bad = Cli::try_parse_from(["sparsity-explorer", "run", "--model", "resnet"]);
        let message = bad.unwrap_err().to_string();
        assert!(
            message.contains("resnet") && message.contains("seed-cnn"),
            "{message}"
        );
    }
}

//! The plan options every training subcommand shares, and how they build an experiment
//! plan: a file or a preset, then each flag on top.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;

use crate::data::DatasetSource;
use crate::model::ModelKind;
use crate::plan::{BackendChoice, ExperimentPlan};
use crate::prune::{At, Criterion, Granularity, LayerOverride, Schedule, ScheduleKind, Scope};

/// Where the plan comes from, and flags that override it.
#[derive(Debug, Args, Default)]
pub struct PlanArgs {
    /// Experiment plan (TOML). Flags override what it says.
    pub plan: Option<PathBuf>,
    /// Start from a built-in preset (see `presets`).
    #[arg(long)]
    pub preset: Option<String>,
    #[arg(long, value_enum, ignore_case = true)]
    pub model: Option<ModelKind>,
    /// builtin, fashion-mnist, or a folder with the four MNIST-format files.
    #[arg(long)]
    pub dataset: Option<String>,
    #[arg(long)]
    pub epochs: Option<u32>,
    #[arg(long)]
    pub batch: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// auto: wgpu on a real GPU, else flex; remote: a `serve`d device (--remote).
    #[arg(long, value_enum, ignore_case = true)]
    pub backend: Option<BackendChoice>,
    /// The server for --backend remote: ws://HOST:PORT, or several comma separated (a run
    /// uses the first; a sweep spreads its points over all). Implies --backend remote.
    #[arg(long, value_name = "ws://HOST:PORT[,...]")]
    pub remote: Option<String>,
    /// The token the remote server was started with.
    #[arg(long)]
    pub token: Option<String>,
    /// Start from these weights: a PyTorch state_dict saved as safetensors (keys by layer
    /// name or nn.Sequential position). Analyses and exports use them as they are.
    #[arg(long, value_name = "FILE.safetensors")]
    pub weights: Option<PathBuf>,
    /// Use this ONNX model: its graph becomes the network (model custom) and its weights
    /// the starting weights, as they are for analyses and exports. See docs/onnx.md.
    #[arg(long, value_name = "FILE.onnx")]
    pub onnx: Option<PathBuf>,
    /// Evaluate every this many steps (0: the automatic cadence, by time and after every
    /// cut and its recovery).
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Train at most this many steps per second (0: full speed, whatever the plan says).
    #[arg(long, value_name = "STEPS_PER_S")]
    pub pace: Option<f64>,
    /// unstructured, N:M (2:4), block:RxC[:max], channel, head.
    #[arg(long)]
    pub granularity: Option<String>,
    /// Channel groups keep a multiple of this many channels (8 or 16: widths runtimes run
    /// fast); 1: no rounding.
    #[arg(long, value_name = "N")]
    pub round_to: Option<usize>,
    #[arg(long, value_enum, ignore_case = true)]
    pub criterion: Option<Criterion>,
    /// layer: each layer hits its target; global: one threshold across layers.
    #[arg(long, value_enum, ignore_case = true)]
    pub scope: Option<Scope>,
    /// A new schedule kind: target, begin and end carry over, the rest takes the defaults.
    #[arg(long, value_enum, ignore_case = true)]
    pub schedule: Option<ScheduleKind>,
    /// Final target sparsity, in [0, 1).
    #[arg(long)]
    pub target: Option<f64>,
    /// Initial sparsity of the polynomial schedule.
    #[arg(long)]
    pub initial: Option<f64>,
    /// When pruning begins: a step (500) or epochs (8e).
    #[arg(long)]
    pub begin: Option<String>,
    /// When pruning ends (polynomial, iterative, constant; rigl and set: the last exchange):
    /// a step or epochs (16e).
    #[arg(long)]
    pub end: Option<String>,
    /// Prune every this many steps (constant, polynomial; rigl and set: exchange).
    #[arg(long)]
    pub frequency: Option<u64>,
    /// Share of the kept weights rigl and set exchange at their first update, in (0, 1].
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Number of pruning steps of the iterative schedule.
    #[arg(long)]
    pub prune_steps: Option<u32>,
    /// Per-layer override, repeatable: NAME:skip or NAME:target=0.5,granularity=2:4,criterion=random.
    #[arg(long = "layer", value_name = "NAME:SETTINGS")]
    pub layers: Vec<String>,
}

/// Parses a comma-separated list; `flag` names the option in errors.
pub fn parse_list<T: std::str::FromStr>(text: &str, flag: &str) -> Result<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    let items: Vec<T> = text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<T>().map_err(|e| anyhow!("{flag}: {e}")))
        .collect::<Result<_>>()?;
    if items.is_empty() {
        bail!("{flag}: the list is empty");
    }
    Ok(items)
}

/// Parses a moment: `500` (steps) or `8e` / `8epochs` / `2.5 epochs`.
pub fn parse_at(text: &str) -> Result<At> {
    let t = text.trim().to_ascii_lowercase();
    let number = t.trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == ' ');
    let unit = t[number.len()..].trim();
    match unit {
        "" | "s" | "step" | "steps" => number
            .parse::<u64>()
            .map(At::Step)
            .map_err(|_| anyhow!("{text:?} is not a step count")),
        "e" | "ep" | "epoch" | "epochs" => {
            let epoch: f64 = number
                .parse()
                .map_err(|_| anyhow!("{text:?} is not a number of epochs"))?;
            if !(epoch.is_finite() && epoch >= 0.0) {
                bail!("{text:?} is not a number of epochs");
            }
            Ok(At::Epoch { epoch })
        }
        _ => bail!("cannot read {text:?}: write a step count (500) or epochs (8e)"),
    }
}

/// Parses `NAME:skip` or `NAME:key=value,...` into an override.
pub fn parse_layer_override(spec: &str) -> Result<(String, LayerOverride)> {
    let (name, settings) = spec
        .split_once(':')
        .ok_or_else(|| anyhow!("--layer {spec:?}: expected NAME:SETTINGS, like fc3:skip"))?;
    let mut o = LayerOverride::default();
    for item in settings.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "skip" {
            o.skip = true;
            continue;
        }
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| anyhow!("--layer {spec:?}: {item:?} is not key=value or skip"))?;
        match key {
            "target" => {
                o.target =
                    Some(value.parse().map_err(|_| {
                        anyhow!("--layer {spec:?}: target {value:?} is not a number")
                    })?)
            }
            "granularity" => {
                o.granularity = Some(
                    value
                        .parse::<Granularity>()
                        .with_context(|| format!("--layer {spec:?}"))?,
                )
            }
            "criterion" => {
                o.criterion = Some(
                    value
                        .parse::<Criterion>()
                        .with_context(|| format!("--layer {spec:?}"))?,
                )
            }
            "skip" => o.skip = value == "true",
            other => bail!(
                "--layer {spec:?}: unknown setting {other:?} (use skip, target, granularity, criterion)"
            ),
        }
    }
    Ok((name.to_string(), o))
}

impl PlanArgs {
    /// The plan: file or preset (or quick-demo), then every flag applied on top.
    pub fn build(&self) -> Result<ExperimentPlan> {
        let mut plan = match (&self.plan, &self.preset) {
            (Some(_), Some(_)) => bail!("give either a plan file or --preset, not both"),
            (Some(path), None) => ExperimentPlan::load(path)?,
            (None, Some(name)) => ExperimentPlan::preset(name)?,
            (None, None) => ExperimentPlan::preset("quick-demo")?,
        };
        if plan.training.until_stopped {
            // a terminal run has an end: the plan's epochs
            eprintln!(
                "note: the plan trains until stopped in the window; here it runs for its {} epochs",
                plan.training.epochs
            );
            plan.training.until_stopped = false;
        }
        if let Some(model) = self.model
            && model != plan.model
        {
            plan.model = model;
            // overrides name the old model's layers, and the name described the old model
            plan.pruning.layers.clear();
            plan.name.clear();
        }
        if let Some(path) = &self.onnx {
            plan = plan.with_onnx(path)?;
        }
        if let Some(d) = &self.dataset {
            plan.dataset = d.parse::<DatasetSource>().expect("infallible");
        }
        let t = &mut plan.training;
        if let Some(v) = self.epochs {
            t.epochs = v;
        }
        if let Some(v) = self.batch {
            t.batch = v;
        }
        if let Some(v) = self.lr {
            t.lr = v;
        }
        if let Some(v) = self.seed {
            t.seed = v;
        }
        if let Some(v) = self.backend {
            t.backend = v;
        }
        if let Some(url) = &self.remote {
            t.remote = Some(url.clone());
            t.backend = BackendChoice::Remote;
        }
        if let Some(token) = &self.token {
            t.token = Some(token.clone());
        }
        if let Some(v) = self.eval_every {
            t.eval_every = v;
        }
        if let Some(v) = self.pace {
            t.pace = (v != 0.0).then_some(v);
        }
        if let Some(path) = &self.weights {
            t.weights = Some(path.clone());
        }
        let p = &mut plan.pruning;
        if let Some(g) = &self.granularity {
            p.granularity = g.parse().context("--granularity")?;
        }
        if let Some(c) = self.criterion {
            p.criterion = c;
        }
        if let Some(s) = self.scope {
            p.scope = s;
        }
        if let Some(n) = self.round_to {
            anyhow::ensure!(n >= 1, "--round-to must be at least 1");
            p.round_to = n;
        }
        self.apply_schedule(&mut p.schedule)?;
        for spec in &self.layers {
            let (name, o) = parse_layer_override(spec)?;
            p.layers.insert(name, o);
        }
        plan.validate(crate::data::BUILTIN_TRAIN)?;
        Ok(plan)
    }

    fn apply_schedule(&self, schedule: &mut Schedule) -> Result<()> {
        let target = self.target.unwrap_or(schedule.final_target());
        let begin = self.begin.as_deref().map(parse_at).transpose()?;
        let end = self.end.as_deref().map(parse_at).transpose()?;
        if let Some(kind) = self.schedule {
            *schedule = schedule.with_kind(kind);
        }
        schedule.set_final_target(target);
        match schedule {
            Schedule::Constant {
                begin: b,
                end: e,
                frequency,
                ..
            } => {
                *b = begin.unwrap_or(*b);
                *e = end.or(*e);
                *frequency = self.frequency.unwrap_or(*frequency);
            }
            Schedule::OneShot { at, .. } => *at = begin.unwrap_or(*at),
            Schedule::Iterative {
                begin: b,
                end: e,
                prune_steps,
                ..
            } => {
                *b = begin.unwrap_or(*b);
                *e = end.unwrap_or(*e);
                *prune_steps = self.prune_steps.unwrap_or(*prune_steps);
            }
            Schedule::Polynomial {
                initial,
                begin: b,
                end: e,
                frequency,
                ..
            } => {
                *initial = self.initial.unwrap_or(*initial);
                *b = begin.unwrap_or(*b);
                *e = end.unwrap_or(*e);
                *frequency = self.frequency.unwrap_or(*frequency);
            }
            Schedule::Rigl(d) | Schedule::Set(d) => {
                d.begin = begin.unwrap_or(d.begin);
                d.end = end.unwrap_or(d.end);
                d.frequency = self.frequency.unwrap_or(d.frequency);
                d.alpha = self.alpha.unwrap_or(d.alpha);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_parse() {
        assert_eq!(parse_at("500").unwrap(), At::Step(500));
        assert_eq!(parse_at("8e").unwrap(), At::Epoch { epoch: 8.0 });
        assert_eq!(parse_at("2.5 epochs").unwrap(), At::Epoch { epoch: 2.5 });
        assert!(parse_at("soon").is_err());
        assert!(parse_at("-3e").is_err());
    }

    #[test]
    fn layer_overrides_parse() {
        let (n, o) = parse_layer_override("conv1:target=0.5,criterion=random").unwrap();
        assert_eq!(n, "conv1");
        assert_eq!(o.target, Some(0.5));
        assert_eq!(o.criterion, Some(Criterion::Random));
        let (_, o) = parse_layer_override("fc3:skip").unwrap();
        assert!(o.skip);
        let (_, o) = parse_layer_override("fc1:granularity=2:4").unwrap();
        assert_eq!(o.granularity, Some(Granularity::NOfM { n: 2, m: 4 }));
        assert!(parse_layer_override("fc1").is_err());
        assert!(parse_layer_override("fc1:size=3").is_err());
        assert!(parse_layer_override("fc1:granularity=4:2").is_err());
    }

    #[test]
    fn flags_override_the_preset() {
        let args = PlanArgs {
            preset: Some("lenet300-agp90".into()),
            target: Some(0.8),
            granularity: Some("2:4".into()),
            epochs: Some(3),
            begin: Some("1e".into()),
            end: Some("2e".into()),
            round_to: Some(8),
            ..Default::default()
        };
        let plan = args.build().unwrap();
        assert_eq!(plan.training.epochs, 3);
        assert_eq!(plan.pruning.round_to, 8);
        assert_eq!(plan.pruning.schedule.final_target(), 0.8);
        assert!(matches!(
            plan.pruning.schedule,
            Schedule::Polynomial {
                begin: At::Epoch { epoch: 1.0 },
                ..
            }
        ));
        let bad = PlanArgs {
            preset: Some("quick-demo".into()),
            target: Some(1.2),
            ..Default::default()
        };
        assert!(bad.build().unwrap_err().to_string().contains("[0, 1)"));
        let bad_layer = PlanArgs {
            preset: Some("quick-demo".into()),
            layers: vec!["conv9:skip".into()],
            ..Default::default()
        };
        assert!(bad_layer.build().unwrap_err().to_string().contains("conv9"));
    }
}

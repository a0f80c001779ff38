//! Driving the worker from the command line: waiting for an event, and getting a trained
//! model into the worker (from a checkpoint, or by training the plan).

use std::io::Write;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::plan::ExperimentPlan;
use crate::train::{Command, Event, Worker};

/// Waits for the first event `done` accepts and returns it, calling `each` on every event
/// and, with `echo`, printing each as a JSON line (except snapshots and the final results,
/// which callers print in their own form). A worker error ends the wait as an error.
pub fn await_event(
    worker: &Worker,
    mut echo: Option<&mut dyn Write>,
    mut each: impl FnMut(&Event),
    done: impl Fn(&Event) -> bool,
) -> Result<Event> {
    loop {
        match worker.recv_timeout(Duration::from_secs(3600)) {
            Ok(Event::Error { error, .. }) => bail!("{error}"),
            Ok(e) => {
                let result = matches!(
                    e,
                    Event::Snapshot(_)
                        | Event::Finished { .. }
                        | Event::Exported(_)
                        | Event::SensitivityFinished { .. }
                        | Event::SweepFinished { .. }
                );
                if let Some(out) = echo.as_deref_mut()
                    && !result
                {
                    writeln!(out, "{}", serde_json::to_string(&e)?)?;
                }
                each(&e);
                if done(&e) {
                    return Ok(e);
                }
            }
            Err(true) => bail!("the training worker stopped"),
            Err(false) => {}
        }
    }
}

/// Puts a trained model in the worker: the checkpoint if one is given, the plan's starting
/// weights as they are if it names some, otherwise the plan trained to its end.
pub fn obtain_model(
    worker: &Worker,
    checkpoint: Option<&std::path::Path>,
    plan: impl FnOnce() -> Result<ExperimentPlan>,
    echo: Option<&mut dyn Write>,
) -> Result<()> {
    match checkpoint {
        Some(path) => {
            worker.send(Command::LoadCheckpoint {
                path: path.to_path_buf(),
            });
            await_event(
                worker,
                echo,
                |_| {},
                |e| matches!(e, Event::CheckpointLoaded { .. }),
            )?;
        }
        None => {
            let plan = plan()?;
            if plan.starting_weights().is_some() {
                worker.send(Command::Prepare(Box::new(plan)));
                await_event(worker, echo, |_| {}, |e| matches!(e, Event::Paused { .. }))?;
                return Ok(());
            }
            worker.send(Command::Start(Box::new(plan)));
            await_event(
                worker,
                echo,
                |_| {},
                |e| matches!(e, Event::Finished { .. }),
            )?;
        }
    }
    Ok(())
}

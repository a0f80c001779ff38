//! The status bar: backend, progress, loss, accuracy, sparsity and time.

use eframe::egui::{Color32, Ui};

use crate::app::state::RunStatus;

pub struct StatusBar<'a> {
    pub status: &'a RunStatus,
    /// The run trains until stopped: no total, no time remaining.
    pub until_stopped: bool,
}

fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

impl StatusBar<'_> {
    pub fn ui(self, ui: &mut Ui) {
        let s = self.status;
        ui.horizontal(|ui| {
            match &s.backend {
                Some(b) => ui.label(format!("{} · {}", b.backend, b.device)),
                None => ui.label("not started"),
            };
            ui.separator();
            if self.until_stopped {
                ui.label(format!(
                    "epoch {:.2} · step {} (until stopped)",
                    s.epoch, s.step
                ));
            } else {
                ui.label(format!(
                    "epoch {:.2} · step {}/{}",
                    s.epoch, s.step, s.total_steps
                ));
            }
            ui.separator();
            ui.label(format!("{:.0} samples/s", s.samples_per_s));
            ui.separator();
            ui.label(format!("loss {:.4}", s.loss));
            if let Some(a) = s.accuracy {
                ui.label(format!("accuracy {a:.4}"));
            }
            ui.label(format!("sparsity {:.3}", s.sparsity));
            ui.separator();
            let remaining = if s.step > 0 && s.total_steps > s.step {
                s.elapsed_s / s.step as f64 * (s.total_steps - s.step) as f64
            } else {
                0.0
            };
            if self.until_stopped {
                ui.label(format!("elapsed {}", clock(s.elapsed_s)));
            } else {
                ui.label(format!(
                    "elapsed {} · remaining {}",
                    clock(s.elapsed_s),
                    clock(remaining)
                ));
            }
            if s.paused {
                ui.colored_label(Color32::from_rgb(230, 170, 60), "paused");
            } else if s.active {
                ui.spinner();
            }
        });
    }
}

//! The status bar: backend, progress, loss, accuracy, sparsity and time.

use eframe::egui::{Color32, Ui};

use crate::app::state::RunStatus;
use crate::i18n::{t, tf};

/// The status bar.
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
                None => ui.label(t("not started")),
            };
            ui.separator();
            if self.until_stopped {
                ui.label(tf(
                    "epoch {} · step {} (until stopped)",
                    &[&format!("{:.2}", s.epoch), &s.step],
                ));
            } else {
                ui.label(tf(
                    "epoch {} · step {}/{}",
                    &[&format!("{:.2}", s.epoch), &s.step, &s.total_steps],
                ));
            }
            ui.separator();
            ui.label(tf("{} samples/s", &[&format!("{:.0}", s.samples_per_s)]));
            ui.separator();
            ui.label(tf("loss {}", &[&format!("{:.4}", s.loss)]));
            if let Some(a) = s.accuracy {
                ui.label(tf("accuracy {}", &[&format!("{a:.4}")]));
            }
            ui.label(tf("sparsity {}", &[&format!("{:.3}", s.sparsity)]));
            ui.separator();
            let remaining = if s.step > 0 && s.total_steps > s.step {
                s.elapsed_s / s.step as f64 * (s.total_steps - s.step) as f64
            } else {
                0.0
            };
            if self.until_stopped {
                ui.label(tf("elapsed {}", &[&clock(s.elapsed_s)]));
            } else {
                ui.label(tf(
                    "elapsed {} · remaining {}",
                    &[&clock(s.elapsed_s), &clock(remaining)],
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

//! A layer's settings as an editor sees them: each one a labelled value of a known range,
//! so the network editor draws every kind's settings without naming the kind.

/// One setting of a layer, borrowed to be shown and changed.
pub enum Setting<'a> {
    /// A count in `min..=max` (`out`, a kernel's side), with its prefix (`"k "`).
    Count {
        prefix: &'static str,
        value: &'a mut usize,
        max: usize,
        min: usize,
    },
    /// A count that defaults to another value when not given (a pool's stride, the
    /// kernel when `None`).
    CountOr {
        prefix: &'static str,
        value: &'a mut Option<usize>,
        default: usize,
        max: usize,
    },
    /// A fraction in `0..=max` (dropout's `p`).
    Fraction {
        prefix: &'static str,
        value: &'a mut f64,
        max: f64,
    },
    /// A switch (`bias`).
    Flag {
        label: &'static str,
        value: &'a mut bool,
    },
    /// The layers a merge reads, by name.
    Names(&'a mut Vec<String>),
}

impl<'a> Setting<'a> {
    /// A count in `min..=max`.
    pub fn count(prefix: &'static str, value: &'a mut usize, min: usize, max: usize) -> Self {
        Setting::Count {
            prefix,
            value,
            max,
            min,
        }
    }
}

//! PyTorch exports exact GELU, before opset 20, as five nodes:
//! `Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)` (or with `Mul(x, 1 / sqrt 2)` and the
//! halves in the other order). [`ErfGelu`] follows such chains node by node and says when
//! one is complete, so that the import makes it one `gelu` layer.

use std::collections::HashMap;

/// How far a chain on input `x` has come, keyed by the ONNX value of its last node.
#[derive(Clone, Debug, PartialEq)]
enum Stage {
    /// `x / sqrt 2`
    Scaled,
    /// `erf(x / sqrt 2)`
    Erf,
    /// `1 + erf(x / sqrt 2)`
    OnePlus,
    /// `x * (1 + erf(x / sqrt 2))`
    TimesX,
    /// `x * 0.5`
    Half,
}

/// One operand of a node: an ONNX value name, with its number when it is a scalar constant.
#[derive(Clone, Copy, Debug)]
pub(super) struct Operand<'a> {
    pub name: &'a str,
    pub scalar: Option<f64>,
}

/// The node a partial chain came from, for errors when something else reads it.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Origin {
    pub node: String,
    pub op: String,
}

#[derive(Default)]
pub(super) struct ErfGelu {
    partial: HashMap<String, (Stage, String, Origin)>,
}

/// What a node did to the chains.
#[derive(Debug, PartialEq)]
pub(super) enum Step {
    /// It extended a chain; its output is not a layer's value yet.
    Extended,
    /// It completed GELU of this ONNX value.
    Done(String),
    /// It is not part of any chain.
    Unrelated,
}

fn near(v: Option<f64>, target: f64) -> bool {
    v.is_some_and(|v| (v - target).abs() <= 1e-5 * target.abs())
}

impl ErfGelu {
    /// The node that began the partial chain ending at `value`, if one does.
    pub fn origin(&self, value: &str) -> Option<&Origin> {
        self.partial.get(value).map(|(_, _, o)| o)
    }

    fn stage(&self, value: &str) -> Option<(&Stage, &str)> {
        self.partial.get(value).map(|(s, x, _)| (s, x.as_str()))
    }

    /// Feeds one `Div`, `Mul`, `Erf` or `Add` node (`op`) with operands `a` (and `b`) and
    /// output `out`.
    pub fn feed(&mut self, origin: Origin, a: Operand, b: Option<Operand>, out: &str) -> Step {
        let sqrt2 = std::f64::consts::SQRT_2;
        let next = match (origin.op.as_str(), b) {
            ("Div", Some(b)) if near(b.scalar, sqrt2) => Some((Stage::Scaled, a.name.to_string())),
            ("Erf", None) => match self.stage(a.name) {
                Some((Stage::Scaled, x)) => Some((Stage::Erf, x.to_string())),
                _ => None,
            },
            ("Add", Some(b)) => self.one_plus(a, b),
            ("Mul", Some(b)) => match self.mul(a, b) {
                Ok(next) => next,
                Err(x) => {
                    return Step::Done(x);
                }
            },
            _ => None,
        };
        match next {
            Some((stage, x)) => {
                let origin = self.origin(a.name).cloned().unwrap_or(origin);
                self.partial.insert(out.to_string(), (stage, x, origin));
                Step::Extended
            }
            None => Step::Unrelated,
        }
    }

    fn one_plus(&self, a: Operand, b: Operand) -> Option<(Stage, String)> {
        for (erf, one) in [(a, b), (b, a)] {
            if let Some((Stage::Erf, x)) = self.stage(erf.name)
                && near(one.scalar, 1.0)
            {
                return Some((Stage::OnePlus, x.to_string()));
            }
        }
        None
    }

    /// The next stage of a `Mul`, or `Err(x)` when it completes GELU of `x`.
    fn mul(&self, a: Operand, b: Operand) -> Result<Option<(Stage, String)>, String> {
        let sqrt_half = std::f64::consts::FRAC_1_SQRT_2;
        for (p, q) in [(a, b), (b, a)] {
            match (self.stage(p.name), self.stage(q.name)) {
                (Some((Stage::TimesX, x)), _) if near(q.scalar, 0.5) => return Err(x.into()),
                (Some((Stage::Half, x)), Some((Stage::OnePlus, y))) if x == y => {
                    return Err(x.into());
                }
                (None, Some((Stage::OnePlus, x))) if p.name == x => {
                    return Ok(Some((Stage::TimesX, x.into())));
                }
                _ => {}
            }
        }
        for (x, c) in [(a, b), (b, a)] {
            if self.stage(x.name).is_none() && x.scalar.is_none() {
                if near(c.scalar, sqrt_half) {
                    return Ok(Some((Stage::Scaled, x.name.into())));
                }
                if near(c.scalar, 0.5) {
                    return Ok(Some((Stage::Half, x.name.into())));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str) -> Operand<'_> {
        Operand { name, scalar: None }
    }
    fn c(value: f64) -> Operand<'static> {
        Operand {
            name: "const",
            scalar: Some(value),
        }
    }
    fn at(op: &str) -> Origin {
        Origin {
            node: format!("/{op}"),
            op: op.into(),
        }
    }

    #[test]
    fn pytorch_s_chain_in_either_order_is_gelu_of_its_input() {
        // x / sqrt2 -> erf -> + 1 -> x * _ -> _ * 0.5
        let mut g = ErfGelu::default();
        let sqrt2 = std::f64::consts::SQRT_2;
        assert_eq!(
            g.feed(at("Div"), v("x"), Some(c(sqrt2)), "d"),
            Step::Extended
        );
        assert_eq!(g.feed(at("Erf"), v("d"), None, "e"), Step::Extended);
        assert_eq!(g.feed(at("Add"), c(1.0), Some(v("e")), "p"), Step::Extended);
        assert_eq!(g.feed(at("Mul"), v("x"), Some(v("p")), "m"), Step::Extended);
        assert_eq!(
            g.feed(at("Mul"), v("m"), Some(c(0.5)), "y"),
            Step::Done("x".into())
        );
        // (x * 0.5) * (1 + erf(x * 1/sqrt2))
        let mut g = ErfGelu::default();
        let half = std::f64::consts::FRAC_1_SQRT_2;
        assert_eq!(
            g.feed(at("Mul"), v("x"), Some(c(half)), "d"),
            Step::Extended
        );
        assert_eq!(g.feed(at("Erf"), v("d"), None, "e"), Step::Extended);
        assert_eq!(g.feed(at("Add"), v("e"), Some(c(1.0)), "p"), Step::Extended);
        assert_eq!(g.feed(at("Mul"), v("x"), Some(c(0.5)), "h"), Step::Extended);
        assert_eq!(
            g.feed(at("Mul"), v("p"), Some(v("h")), "y"),
            Step::Done("x".into())
        );
    }

    #[test]
    fn other_constants_or_operands_are_not_gelu() {
        let mut g = ErfGelu::default();
        assert_eq!(
            g.feed(at("Div"), v("x"), Some(c(2.0)), "d"),
            Step::Unrelated
        );
        assert_eq!(g.feed(at("Erf"), v("x"), None, "e"), Step::Unrelated);
        assert_eq!(
            g.feed(at("Add"), v("x"), Some(v("y")), "s"),
            Step::Unrelated
        );
        let sqrt2 = std::f64::consts::SQRT_2;
        g.feed(at("Div"), v("x"), Some(c(sqrt2)), "d");
        g.feed(at("Erf"), v("d"), None, "e");
        g.feed(at("Add"), v("e"), Some(c(1.0)), "p");
        // multiplied by another value than the chain's input
        assert_eq!(
            g.feed(at("Mul"), v("z"), Some(v("p")), "m"),
            Step::Unrelated
        );
        // the chain's values name where they began
        assert_eq!(g.origin("p").map(|o| o.op.as_str()), Some("Div"));
    }
}

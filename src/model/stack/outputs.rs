//! Walking a graph forward: how many layers read each output, and the values of a pass,
//! each kept until its last reader takes it. The burn network and the host inference both
//! walk their graphs with these.

use super::{ResolvedLayer, Source};

/// How many layers read the network's input and each layer's output.
#[derive(Clone, Debug, PartialEq)]
pub struct Readers {
    pub input: usize,
    pub layers: Vec<usize>,
}

impl Readers {
    pub fn of(layers: &[ResolvedLayer]) -> Self {
        let mut readers = Readers {
            input: 0,
            layers: vec![0; layers.len()],
        };
        for source in layers.iter().flat_map(|l| &l.sources) {
            match source {
                Source::Input => readers.input += 1,
                Source::Layer(j) => readers.layers[*j] += 1,
            }
        }
        readers
    }
}

/// The values of one forward pass: the input and each layer's output so far.
pub struct Outputs<T> {
    input: Option<T>,
    layers: Vec<Option<T>>,
    /// Readers still to come, per value.
    left: Readers,
}

impl<T: Clone> Outputs<T> {
    pub fn new(input: T, readers: &Readers) -> Self {
        Self {
            input: Some(input),
            layers: (0..readers.layers.len()).map(|_| None).collect(),
            left: readers.clone(),
        }
    }

    /// The value of `source` for one of its readers: moved out to the last one (so that its
    /// buffer can be reused), a copy or a handle to the others.
    pub fn take(&mut self, source: Source) -> T {
        let (slot, left) = match source {
            Source::Input => (&mut self.input, &mut self.left.input),
            Source::Layer(j) => (&mut self.layers[j], &mut self.left.layers[j]),
        };
        *left -= 1;
        let value = if *left == 0 {
            slot.take()
        } else {
            slot.clone()
        };
        value.expect(
            "a layer's output is read after it is computed, by as many readers as the graph says",
        )
    }

    /// Layer `layer`'s output.
    pub fn set(&mut self, layer: usize, value: T) {
        self.layers[layer] = Some(value);
    }

    /// The last layer's output: the network's.
    pub fn into_last(mut self) -> Option<T> {
        self.layers.pop().flatten()
    }
}

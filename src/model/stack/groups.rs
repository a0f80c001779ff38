//! Which channels a network ties together: the channel groups of its graph, after
//! Torch-Pruning's dependency graph. Each layer's kind says what it does to the channel
//! spaces (`Kind::channels`); [`crate::layers::ChannelFlow`] keeps them. A group is the set
//! of spaces an `add` tied (or a single one), with the weights that write it and the weights
//! that read it; each attention layer's heads are a group too.

use crate::layers::{ChannelFlow, View};
use crate::prune::UnitGroup;

use super::{ResolvedLayer, Source};

/// The groups of resolved `layers` that pruning may shrink: the channel groups, in the
/// order of their first producer, then each attention layer's heads. Weights are numbered
/// as [`super::prunable_specs`] numbers them.
pub fn unit_groups(layers: &[ResolvedLayer]) -> Vec<UnitGroup> {
    let mut flow = ChannelFlow::default();
    let input = flow.new_space(layers.first().map_or(0, |l| l.input.channels()), true);
    let mut views: Vec<View> = Vec::with_capacity(layers.len());
    for l in layers {
        let ins: Vec<View> = l
            .sources
            .iter()
            .map(|s| match s {
                Source::Input => input,
                Source::Layer(j) => views[*j],
            })
            .collect();
        views.push(l.kind.channels(&l.at(), &mut flow, &ins));
    }
    flow.finish(views.last().copied())
}

//! What a session keeps for each prunable layer, together: its rule, its masks, and the
//! sums its criterion ranks by.

use crate::model::DeviceMask;
use crate::prune::LayerRule;

/// One prunable layer's state in a session, in layer order.
pub(super) struct PrunableLayer {
    /// How the plan prunes it.
    pub rule: LayerRule,
    /// The host mask (`None`: dense), PyTorch layout.
    pub mask: Option<Vec<u8>>,
    /// The same mask on the session's device, applied after every optimizer step.
    pub device_mask: Option<DeviceMask>,
    /// `sum |w * g|` since the last pruning step (Taylor); empty unless the plan ranks some
    /// layer by it.
    pub taylor: Vec<f32>,
    /// `-sum w * g` since training began (movement); empty unless the plan ranks by it.
    pub movement: Vec<f32>,
    /// The weights grown back by the last exchange (RigL, SET).
    pub grown: Vec<u32>,
}

impl PrunableLayer {
    /// A dense layer pruned by `rule`, with nothing summed yet.
    pub fn new(rule: LayerRule) -> Self {
        Self {
            rule,
            mask: None,
            device_mask: None,
            taylor: Vec::new(),
            movement: Vec::new(),
            grown: Vec::new(),
        }
    }
}

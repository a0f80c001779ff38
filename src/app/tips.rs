//! The tooltips that teach the plan's settings: one per concept, shown in English or
//! through the Chinese table.

pub const DATASET: &str = "The images to train on. Built-in: 10,000 MNIST digits shipped with the program (8,000 train / 2,000 test). Fashion-MNIST: 70,000 clothing images, when Debian's dataset-fashion-mnist is installed.";
pub const MODEL: &str = "The network to train and prune. LeNet-300-100 is all dense layers; the CNNs show how convolutions react to pruning (they are usually more sensitive than late dense layers).";
pub const BACKEND: &str = "Where training runs. auto picks a real GPU through wgpu and falls back to burn's CPU backend (flex) when there is none; a software GPU such as llvmpipe is far slower than flex.";
pub const REMOTE: &str = "Train on another machine's device: start `sparsity-explorer serve --token T` there and give its address (ws://HOST:3000) and token here.";
pub const LR: &str = "Adam's learning rate. Too high and the loss explodes (the run stops and says so); 1e-3 is a safe start.";
pub const BATCH: &str =
    "Examples per training step. An epoch is the training set divided by this, rounded up.";
pub const EPOCHS: &str = "Passes over the training set. Pruning needs time after the last pruning step to recover: fine-tuning.";
pub const UNTIL_STOPPED: &str = "Keep training until Stop: the epochs only set how far ahead the plots plan. After the schedule's end the masks hold its final value, and a new target, granularity or criterion applies at the next step. For live demos.";
pub const SEED: &str = "Seeds weight initialisation, shuffling and the random criterion: the same seed gives the same run.";
pub const EVAL: &str = "Evaluate on the test split every this many steps (0: automatic, as often as keeps evaluating under a tenth of the run). Each evaluation is one point on the accuracy-vs-sparsity plot.";
pub const UNSTRUCTURED: &str = "Any weight can go on its own. Reaches high sparsity at little cost in accuracy, but dense hardware cannot skip scattered zeros: speed-ups need sparse kernels.";
pub const NM: &str = "N:M keeps at most N of every M consecutive weights along the input axis. 2:4 is what NVIDIA's sparse tensor cores run at twice the speed: the pattern is regular, so the hardware knows where the zeros are. Sparsity is fixed at 1 - N/M.";
pub const BLOCK: &str = "Prunes whole R x C tiles of the weight matrix (conv filters flattened). Blocks map onto vector units and tiles of sparse kernels; larger blocks are easier to accelerate and cost more accuracy.";
pub const CHANNEL: &str = "Removes whole output neurons (dense) or whole filters (conv), ranked by L2 norm. The layer physically shrinks, so it is faster everywhere, but it is the coarsest cut and costs the most accuracy.";
pub const MAGNITUDE: &str = "Prune the weights (or blocks, channels) with the smallest magnitude first: small weights contribute least to the output.";
pub const TAYLOR: &str = "First-order Taylor (Molchanov et al. 2019): how much the loss would change without the weight, |w x dL/dw|, averaged over the steps since the last pruning step. Weights the loss leans on stay, however small.";
pub const MOVEMENT: &str = "Movement (Sanh et al. 2020): -sum of w x dL/dw over training: weights that training pushes away from zero stay, weights it pulls towards zero go, whatever their size now.";
pub const SNIP: &str = "SNIP (Lee et al. 2019): |w x dL/dw| on one batch at the moment of pruning. Made for pruning at initialisation: a one-shot schedule at step 0 prunes before any training.";
pub const WANDA: &str = "Wanda (Sun et al. 2023): |w| x the norm of the input it multiplies, measured on a calibration batch. A small weight on a loud input can matter more than a large weight on a quiet one. With unstructured weights it ranks within each output row, as the paper does.";
pub const SYNFLOW: &str = "SynFlow (Tanaka et al. 2020): data-free. Every parameter is made positive and an all-ones image goes through; each weight's score is w x dR/dw of the summed output, the 'synaptic flow' through it. Pruned in 100 rounds that each remove a little, so no layer is cut off: made for pruning at initialisation.";
pub const RANDOM: &str =
    "Prune in a seeded random order: the baseline that shows how much magnitude ranking is worth.";
pub const PER_LAYER: &str = "Every layer reaches the target on its own.";
pub const GLOBAL: &str = "One threshold across all layers (torch's global_unstructured): layers with many small weights (usually the large dense ones) are pruned harder, sensitive small layers less.";
pub const CONSTANT: &str =
    "tfmot's ConstantSparsity: the same target at every pruning step from the begin step.";
pub const ONE_SHOT: &str =
    "Train dense, prune to the target once, then fine-tune with the mask fixed.";
pub const REWIND: &str = "Lottery tickets (Frankle & Carbin 2019; Frankle et al. 2020): after every pruning step the surviving weights go back to their values at this early moment and train again, with fresh Adam moments. With an iterative schedule this is iterative magnitude pruning with rewinding. The moment must come before the first pruning step.";
pub const ITERATIVE: &str = "Prune a step, retrain, repeat: K pruning steps evenly spaced, each raising sparsity by target / K.";
pub const POLYNOMIAL: &str = "tfmot's PolynomialDecay (automated gradual pruning): sparsity rises from initial to final as 1 - (1 - p)^3, fast at first while the network has slack, then slowly near the end so it can recover.";
pub const RIGL: &str = "RigL (Evci et al. 2020), dynamic sparse training: sparse from the begin step, never dense. Every few steps the smallest kept weights are dropped and as many pruned weights with the largest gradient are grown back at zero; the share exchanged decays with a cosine. Grown weights show in green on the mask tiles.";
pub const SET: &str = "SET (Mocanu et al. 2018): as RigL, but the weights grown back are chosen at random rather than by gradient.";
pub const EXCHANGE: &str = "Drop and grow every this many steps.";
pub const EXCHANGE_END: &str =
    "The last drop-and-grow: after it the mask stays fixed and the network fine-tunes.";
pub const ALPHA: &str = "The share of kept weights exchanged at the first update (RigL's 0.3); it decays as alpha/2 x (1 + cos(pi t / T)) to zero at the last exchange.";
pub const TARGET: &str = "The sparsity the schedule ends at: the fraction of weights set to zero. 50-70% usually costs little accuracy; beyond 90% the cost grows fast. Drag it during training: the next pruning step follows.";
pub const FREQUENCY: &str =
    "Masks are recomputed every this many steps; in between, training adapts to the last cut.";
pub const POWER: &str = "The exponent of the polynomial: 3 (tfmot's default) front-loads pruning; 1 is a straight line.";
pub const BEGIN: &str =
    "When pruning starts. The test accuracy right before it is the run's dense baseline.";
pub const END: &str = "When the schedule reaches its final sparsity.";
pub const LAYER_SKIP: &str = "Leave this layer dense. The last layer is often kept dense: it is small and every weight matters.";
pub const LAYER_TARGET: &str =
    "This layer's own final sparsity; the schedule's curve is scaled to end there.";
pub const LAYER_PATTERN: &str = "This layer's own granularity. The first conv of a grey image has one input channel, so it cannot take N:M groups along its input axis.";
pub const CHANNEL_GROUPS: &str = "Channel groups: channels the network ties together (a residual add sums them), pruned together when the granularity is channel. out: the layer writes the group's channels (its rows); in: it reads them (its columns). A group is ranked by its members' summed scores.";
pub const HEAD: &str = "Whole attention heads: a head's query, key and value rows and its columns of the output projection go together. Only attention's projections take it; the other layers stay dense.";

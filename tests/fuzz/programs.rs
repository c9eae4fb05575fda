//! The program generator: seeded, reproducible random scenario programs (see
//! tests/scenarios/README.md, "Generated programs", for the rules that make their Node.js order
//! deterministic).

use std::fmt;

/// A small, fast, seedable PRNG (SplitMix64): the same seed gives the same programs everywhere.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

/// One op of a generated program (the scenario language's ops; labels are unique).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum G {
    Timeout(String, u64, Vec<G>),
    Interval(String, u64, u64, Vec<G>),
    Immediate(String, Vec<G>),
    Tick(String, Vec<G>),
    Micro(String, Vec<G>),
    Busy(u64),
    Clear(String),
    Unref(String),
    Ref(String),
    Refresh(String),
}

impl G {
    /// The body of a block op.
    pub fn body_mut(&mut self) -> Option<&mut Vec<G>> {
        match self {
            G::Timeout(_, _, b)
            | G::Interval(_, _, _, b)
            | G::Immediate(_, b)
            | G::Tick(_, b)
            | G::Micro(_, b) => Some(b),
            _ => None,
        }
    }

    fn body(&self) -> Option<&[G]> {
        match self {
            G::Timeout(_, _, b)
            | G::Interval(_, _, _, b)
            | G::Immediate(_, b)
            | G::Tick(_, b)
            | G::Micro(_, b) => Some(b),
            _ => None,
        }
    }
}

/// Number of ops in a program, nested ones included.
pub fn size(ops: &[G]) -> usize {
    ops.iter().map(|o| 1 + o.body().map_or(0, size)).sum()
}

/// A program as scenario text (one line).
pub struct Text<'a>(pub &'a [G]);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, op) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match op {
                G::Timeout(l, ms, b) => write!(f, "timeout {l} {ms} {{ {} }}", Text(b))?,
                G::Interval(l, ms, n, b) => write!(f, "interval {l} {ms} {n} {{ {} }}", Text(b))?,
                G::Immediate(l, b) => write!(f, "immediate {l} {{ {} }}", Text(b))?,
                G::Tick(l, b) => write!(f, "tick {l} {{ {} }}", Text(b))?,
                G::Micro(l, b) => write!(f, "micro {l} {{ {} }}", Text(b))?,
                G::Busy(ms) => write!(f, "busy {ms}")?,
                G::Clear(l) => write!(f, "clear {l}")?,
                G::Unref(l) => write!(f, "unref {l}")?,
                G::Ref(l) => write!(f, "ref {l}")?,
                G::Refresh(l) => write!(f, "refresh {l}")?,
            }
        }
        Ok(())
    }
}

/// Timer durations of the main script, of nested timers, and interval periods (ms): few and far
/// apart, so that two due times are either equal (same list: creation order decides) or at
/// least ~10 ms apart.
const TOP_MS: [u64; 5] = [1, 1, 15, 40, 70];
const NESTED_MS: [u64; 3] = [1, 1, 15];
const INTERVAL_MS: [u64; 2] = [10, 30];
/// Busy spins (ms): each is well past every nested duration, so a spin either makes a pending
/// short timer due by a margin or is irrelevant to it.
const BUSY_MS: [u64; 2] = [20, 35];

/// A timer label the program may name, and whether a `refresh` may name it.
struct Known {
    label: String,
    timer: bool,
    /// The op is complete and no `refresh` is anywhere in its body, so refreshing it cannot
    /// make a refresh cycle (which would never end).
    refreshable: bool,
}

struct Gen<'a> {
    rng: &'a mut Rng,
    next: usize,
    known: Vec<Known>,
    /// Ops left to place (bounds the program's size and running time).
    budget: usize,
    /// Timer nesting depth of the op being generated.
    timer_depth: usize,
    /// Labels of 1 ms timers.
    short: Vec<String>,
}

impl Gen<'_> {
    fn label(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    fn block(&mut self, top: bool, max_len: usize) -> (Vec<G>, bool) {
        let len = if top {
            2 + self.rng.below(max_len - 1)
        } else {
            self.rng.below(max_len + 1)
        };
        let mut out = Vec::new();
        let mut has_refresh = false;
        for _ in 0..len {
            if self.budget == 0 {
                break;
            }
            self.budget -= 1;
            let (op, r) = self.op(top);
            has_refresh |= r;
            // A 1 ms countdown (a new 1 ms timer, or a refresh that may restart one) is
            // followed by a spin in the same callback, so it is overdue by a wide margin at the
            // next timers pass instead of racing it.
            let short = match &op {
                G::Timeout(_, 1, _) => true,
                G::Refresh(l) => self.short.contains(l),
                _ => false,
            };
            out.push(op);
            if short {
                out.push(G::Busy(self.rng.pick(&BUSY_MS)));
            }
        }
        (out, has_refresh)
    }

    fn handle_op(&mut self, refresh_only: bool) -> Option<G> {
        let cands: Vec<usize> = (0..self.known.len())
            .filter(|&i| !refresh_only || (self.known[i].timer && self.known[i].refreshable))
            .collect();
        if cands.is_empty() {
            return None;
        }
        let k = &self.known[cands[self.rng.below(cands.len())]];
        let l = k.label.clone();
        Some(if refresh_only {
            G::Refresh(l)
        } else {
            match self.rng.below(4) {
                0 | 1 => G::Clear(l),
                2 => G::Unref(l),
                _ => G::Ref(l),
            }
        })
    }

    /// Generates a block op: registers its label (so its own body may clear/unref/ref it),
    /// generates the body, then marks it refreshable if its body has no refresh.
    fn block_op(
        &mut self,
        prefix: &str,
        timer: bool,
        max_len: usize,
        make: impl FnOnce(String, Vec<G>) -> G,
    ) -> (G, bool) {
        let l = self.label(prefix);
        let idx = self.known.len();
        self.known.push(Known {
            label: l.clone(),
            timer,
            refreshable: false,
        });
        let (body, r) = self.block(false, max_len);
        self.known[idx].refreshable = timer && !r;
        (make(l, body), r)
    }

    fn op(&mut self, top: bool) -> (G, bool) {
        let roll = self.rng.below(100);
        let nested_ok = self.timer_depth < 2;
        match roll {
            0..=27 if nested_ok => {
                let ms = if self.timer_depth == 0 {
                    self.rng.pick(&TOP_MS)
                } else {
                    self.rng.pick(&NESTED_MS)
                };
                self.timer_depth += 1;
                let r = self.block_op("t", true, 3, |l, b| G::Timeout(l, ms, b));
                if ms == 1 {
                    if let G::Timeout(l, _, _) = &r.0 {
                        self.short.push(l.clone());
                    }
                }
                self.timer_depth -= 1;
                r
            }
            28..=33 if nested_ok && top => {
                let ms = self.rng.pick(&INTERVAL_MS);
                let n = 1 + self.rng.below(3) as u64;
                self.timer_depth += 1;
                let r = self.block_op("v", true, 2, |l, b| G::Interval(l, ms, n, b));
                self.timer_depth -= 1;
                r
            }
            34..=49 => self.block_op("i", false, 2, G::Immediate),
            50..=62 => self.block_op("n", false, 2, G::Tick),
            63..=71 => self.block_op("m", false, 2, G::Micro),
            72..=79 => (G::Busy(self.rng.pick(&BUSY_MS)), false),
            80..=87 => match self.handle_op(true) {
                Some(op) => (op, true),
                None => (G::Busy(self.rng.pick(&BUSY_MS)), false),
            },
            _ => match self.handle_op(false) {
                Some(op) => (op, false),
                None => self.block_op("n", false, 1, G::Tick),
            },
        }
    }
}

/// Program number `index` of the campaign with `seed`: the same pair always gives the same
/// program.
pub fn program(seed: u64, index: u64) -> Vec<G> {
    let mut rng = Rng::new(seed ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03));
    let budget = 6 + rng.below(10);
    let mut g = Gen {
        rng: &mut rng,
        next: 0,
        known: Vec::new(),
        budget,
        timer_depth: 0,
        short: Vec::new(),
    };
    g.block(true, 5).0
}

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

/// A handle op whose label is chosen once the whole program exists (so it may name a handle
/// created later in the text, or its own or an enclosing one).
#[derive(Clone, Copy)]
enum Hole {
    /// `clear`, `unref` or `ref` (decided at fill time), of any handle.
    Other,
    /// `refresh` of a timer whose body holds no `refresh` (a refresh cycle would never end).
    Refresh,
    /// Two ops on the same handle: `clear` then `refresh`, `unref` then `refresh`, and so on.
    Pair,
}

/// The op list under construction: ops, or holes to fill.
enum Slot {
    Op(G),
    Block(G, Vec<Slot>),
    Hole(Hole),
}

struct Gen<'a> {
    rng: &'a mut Rng,
    next: usize,
    /// Ops left to place (bounds the program's size and running time).
    budget: usize,
    /// Timer nesting depth of the op being generated.
    timer_depth: usize,
}

impl Gen<'_> {
    fn label(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    fn block(&mut self, top: bool, max_len: usize) -> Vec<Slot> {
        let len = if top {
            2 + self.rng.below(max_len - 1)
        } else {
            self.rng.below(max_len + 1)
        };
        let mut out = Vec::new();
        for _ in 0..len {
            if self.budget == 0 {
                break;
            }
            self.budget -= 1;
            out.push(self.op(top));
        }
        out
    }

    fn block_op(&mut self, op: G, max_len: usize) -> Slot {
        Slot::Block(op, self.block(false, max_len))
    }

    fn op(&mut self, top: bool) -> Slot {
        let nested_ok = self.timer_depth < 2;
        match self.rng.below(100) {
            0..=26 if nested_ok => {
                let ms = if self.timer_depth == 0 {
                    self.rng.pick(&TOP_MS)
                } else {
                    self.rng.pick(&NESTED_MS)
                };
                let l = self.label("t");
                self.timer_depth += 1;
                let s = self.block_op(G::Timeout(l, ms, vec![]), 3);
                self.timer_depth -= 1;
                s
            }
            27..=32 if nested_ok && top => {
                let ms = self.rng.pick(&INTERVAL_MS);
                let n = 1 + self.rng.below(3) as u64;
                let l = self.label("v");
                self.timer_depth += 1;
                let s = self.block_op(G::Interval(l, ms, n, vec![]), 2);
                self.timer_depth -= 1;
                s
            }
            33..=45 => {
                let l = self.label("i");
                self.block_op(G::Immediate(l, vec![]), 2)
            }
            46..=57 => {
                let l = self.label("n");
                self.block_op(G::Tick(l, vec![]), 2)
            }
            58..=65 => {
                let l = self.label("m");
                self.block_op(G::Micro(l, vec![]), 2)
            }
            66..=73 => Slot::Op(G::Busy(self.rng.pick(&BUSY_MS))),
            74..=83 => Slot::Hole(Hole::Refresh),
            84..=89 => Slot::Hole(Hole::Pair),
            _ => Slot::Hole(Hole::Other),
        }
    }
}

/// A handle the program creates, as the fill sees it.
struct Named {
    label: String,
    short: bool,
    /// No `refresh` hole anywhere in its body.
    refreshable: bool,
}

fn may_refresh(slots: &[Slot]) -> bool {
    slots.iter().any(|s| match s {
        Slot::Hole(Hole::Refresh | Hole::Pair) => true,
        Slot::Block(_, b) => may_refresh(b),
        _ => false,
    })
}

fn collect(slots: &[Slot], out: &mut Vec<Named>) {
    for s in slots {
        if let Slot::Block(op, body) = s {
            let (label, timer, short) = match op {
                G::Timeout(l, ms, _) => (l, true, *ms == 1),
                G::Interval(l, ..) => (l, true, false),
                G::Immediate(l, _) => (l, false, false),
                _ => {
                    collect(body, out);
                    continue;
                }
            };
            out.push(Named {
                label: label.clone(),
                short,
                refreshable: timer && !may_refresh(body),
            });
            collect(body, out);
        }
    }
}

/// Turns holes into handle ops. A `refresh` of a 1 ms timer is followed by a spin (see
/// `fill_block`).
fn fill(rng: &mut Rng, slots: Vec<Slot>, named: &[Named]) -> Vec<G> {
    let refreshable: Vec<&Named> = named.iter().filter(|n| n.refreshable).collect();
    let mut out = Vec::new();
    for s in slots {
        match s {
            Slot::Op(op) => out.push(op),
            Slot::Block(mut op, body) => {
                *op.body_mut().expect("block op") = fill(rng, body, named);
                let short = matches!(op, G::Timeout(_, 1, _));
                out.push(op);
                // A new 1 ms timer is followed by a spin in the same callback, so it is
                // overdue by a wide margin at the next timers pass instead of racing it.
                if short {
                    out.push(G::Busy(rng.pick(&BUSY_MS)));
                }
            }
            Slot::Hole(h) => {
                if named.is_empty() {
                    continue;
                }
                let other = |rng: &mut Rng, l: &str| match rng.below(4) {
                    0 | 1 => G::Clear(l.to_string()),
                    2 => G::Unref(l.to_string()),
                    _ => G::Ref(l.to_string()),
                };
                let mut refreshed_short = false;
                match h {
                    Hole::Other => {
                        let n = &named[rng.below(named.len())];
                        out.push(other(rng, &n.label));
                    }
                    Hole::Refresh | Hole::Pair => {
                        if refreshable.is_empty() {
                            let n = &named[rng.below(named.len())];
                            out.push(other(rng, &n.label));
                            continue;
                        }
                        let n = refreshable[rng.below(refreshable.len())];
                        if let Hole::Pair = h {
                            out.push(other(rng, &n.label));
                        }
                        out.push(G::Refresh(n.label.clone()));
                        refreshed_short = n.short;
                    }
                }
                // A refresh restarts a 1 ms countdown: the same spin rule.
                if refreshed_short {
                    out.push(G::Busy(rng.pick(&BUSY_MS)));
                }
            }
        }
    }
    out
}

/// Program number `index` of the campaign with `seed`: the same pair always gives the same
/// program.
pub fn program(seed: u64, index: u64) -> Vec<G> {
    let mut rng = Rng::new(seed ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03));
    let budget = 6 + rng.below(10);
    let mut g = Gen {
        rng: &mut rng,
        next: 0,
        budget,
        timer_depth: 0,
    };
    let slots = g.block(true, 5);
    let mut named = Vec::new();
    collect(&slots, &mut named);
    fill(&mut rng, slots, &named)
}

//! Shrinking a program that differs: greedily removes ops, or replaces a block by its body,
//! while the difference stays confirmed (see `oracle::judge`), until no single step keeps it.

use super::oracle;
use super::programs::{G, Text};

/// Every program one step smaller than `ops`.
fn candidates(ops: &[G]) -> Vec<Vec<G>> {
    let mut out = Vec::new();
    for i in 0..ops.len() {
        // Remove op i.
        let mut v = ops.to_vec();
        v.remove(i);
        out.push(v);
        // Replace block op i by its body.
        let mut v = ops.to_vec();
        if let Some(body) = v[i].body_mut() {
            let body = std::mem::take(body);
            if !body.is_empty() {
                v.splice(i..=i, body);
                out.push(v);
            }
        }
        // The same, inside op i's body.
        let mut v = ops.to_vec();
        if let Some(body) = v[i].body_mut() {
            let inner = candidates(body);
            for c in inner {
                let mut w = v.clone();
                *w[i].body_mut().expect("block") = c;
                out.push(w);
            }
        }
        let _ = &mut v;
    }
    out
}

/// Whether `ops` still shows a confirmed difference.
pub fn differs(ops: &[G]) -> Option<(Vec<String>, Vec<String>)> {
    let src = Text(ops).to_string();
    let first_node = oracle::node(&src);
    let first_ours = oracle::ours(&src);
    match oracle::judge(&src, first_node, first_ours) {
        oracle::Verdict::Differs { node, ours } => Some((node, ours)),
        _ => None,
    }
}

/// The smallest program reachable from `ops` by single steps that keep the difference, with
/// the two outputs it gives.
pub fn minimize(
    ops: &[G],
    node: Vec<String>,
    ours: Vec<String>,
) -> (Vec<G>, Vec<String>, Vec<String>) {
    let mut best = (ops.to_vec(), node, ours);
    'outer: loop {
        for c in candidates(&best.0) {
            if let Some((n, o)) = differs(&c) {
                best = (c, n, o);
                continue 'outer;
            }
        }
        return best;
    }
}

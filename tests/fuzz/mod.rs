//! The differential fuzzer: generates programs (`programs`), runs each on Node.js and on our loop
//! (`oracle`), confirms every disagreement by re-running both sides, and shrinks each confirmed
//! difference (`minimize`).

pub mod minimize;
pub mod oracle;
pub mod programs;

use programs::Text;

/// A confirmed difference: the generated program, its minimized form, and what each side
/// printed for the minimized form.
#[derive(Debug)]
pub struct Difference {
    pub index: u64,
    pub program: String,
    pub minimized: String,
    pub minimized_ops: usize,
    pub node: Vec<String>,
    pub ours: Vec<String>,
}

/// What one campaign found.
#[derive(Debug, Default)]
pub struct Report {
    pub programs: usize,
    pub same: usize,
    pub unstable: usize,
    pub differences: Vec<Difference>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "fuzz: {} programs: {} same order, {} set aside (Node.js or timing unstable), {} confirmed differences",
            self.programs,
            self.same,
            self.unstable,
            self.differences.len()
        )?;
        for d in &self.differences {
            writeln!(f, "  program #{}: {}", d.index, d.program)?;
            writeln!(
                f,
                "    minimized ({} ops): {}",
                d.minimized_ops, d.minimized
            )?;
            writeln!(f, "    node: {}", d.node.join(" "))?;
            writeln!(f, "    ours: {}", d.ours.join(" "))?;
        }
        Ok(())
    }
}

/// Runs programs `0..count` of `seed`. All Node.js runs of the first pass happen before ours,
/// so the two sides never compete for the CPU.
pub fn campaign(seed: u64, count: u64, shrink: bool) -> Report {
    let programs: Vec<_> = (0..count).map(|i| programs::program(seed, i)).collect();
    let srcs: Vec<String> = programs.iter().map(|p| Text(p).to_string()).collect();
    let node_first = oracle::node_all(&srcs);
    let mut report = Report {
        programs: srcs.len(),
        ..Report::default()
    };
    for (i, (src, first_node)) in srcs.iter().zip(node_first).enumerate() {
        let first_ours = oracle::ours(src);
        match oracle::judge(src, first_node, first_ours) {
            oracle::Verdict::Same => report.same += 1,
            oracle::Verdict::Unstable => report.unstable += 1,
            oracle::Verdict::Differs { node, ours } => {
                let (min, node, ours) = if shrink {
                    minimize::minimize(&programs[i], node, ours)
                } else {
                    (programs[i].clone(), node, ours)
                };
                report.differences.push(Difference {
                    index: i as u64,
                    program: src.clone(),
                    minimized: Text(&min).to_string(),
                    minimized_ops: programs::size(&min),
                    node,
                    ours,
                });
            }
        }
    }
    report
}

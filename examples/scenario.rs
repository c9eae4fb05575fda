//! Runs a scenario (see `executor::demo::scenario`) read on standard input and prints one label per
//! line, in the order the callbacks ran: `cargo run --release --example scenario < FILE.scn`.
//! A malformed scenario exits 2; a scenario that fails at run time (as Node.js would throw)
//! prints the labels recorded so far, then the error, and exits 1, as `node run.js` does.

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut src = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut src) {
        eprintln!("scenario: cannot read standard input: {e}");
        return ExitCode::from(2);
    }
    let program = match executor::demo::scenario::parse(&src) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("scenario: malformed scenario: {e}");
            return ExitCode::from(2);
        }
    };
    let (labels, failure) = match executor::demo::scenario::try_run(&program) {
        Ok(labels) => (labels, None),
        Err(e) => (e.labels.clone(), Some(e)),
    };
    let mut out = labels.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    print!("{out}");
    match failure {
        None => ExitCode::SUCCESS,
        Some(e) => {
            eprintln!("scenario: {e}");
            ExitCode::from(1)
        }
    }
}

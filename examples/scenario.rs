//! Runs a scenario (see `executor::demo::scenario`) read on standard input and prints one label per
//! line, in the order the callbacks ran: `cargo run --release --example scenario < FILE.scn`.

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
    let labels = executor::demo::scenario::run(&program);
    let mut out = labels.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    print!("{out}");
    ExitCode::SUCCESS
}

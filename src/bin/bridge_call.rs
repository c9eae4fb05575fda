//! One synchronous call into async code, the expensive way: a whole process, as Node.js's
//! `spawnSync` would run it. Computes `X + 1` through an async function on a fresh loop and
//! prints it; the `sync_bridge` example and the `bridge` bench time it against `Bridge`.
//!
//! Usage: `bridge_call [X]` (X: an unsigned integer, default 1).

use std::process::ExitCode;

/// The trivial async function every path of the comparison calls.
async fn trivial(x: u64) -> u64 {
    executor::yield_now().await;
    x + 1
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let x = match (args.next(), args.next()) {
        (None, _) => 1,
        (Some(a), None) => match a.parse::<u64>() {
            Ok(x) if x < u64::MAX => x,
            _ => {
                eprintln!(
                    "bridge_call: X must be an unsigned integer below {}, got {a:?}",
                    u64::MAX
                );
                return ExitCode::from(2);
            }
        },
        (Some(_), Some(extra)) => {
            eprintln!("bridge_call: unexpected argument {extra:?}\nusage: bridge_call [X]");
            return ExitCode::from(2);
        }
    };
    println!("{}", executor::block_on(trivial(x)));
    ExitCode::SUCCESS
}

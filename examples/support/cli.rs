//! Command-line helpers shared by the examples: arguments that are not UTF-8, whole numbers
//! with a range, and output files checked before the work starts. Every error names what is
//! allowed, so the message alone says how to fix the command.

use std::ffi::OsString;

/// The arguments after the program's name, each checked to be UTF-8 (`std::env::args` panics
/// on one that is not).
pub fn utf8_args() -> Result<Vec<String>, String> {
    utf8(std::env::args_os().skip(1))
}

/// `args`, each checked to be UTF-8.
pub fn utf8(args: impl IntoIterator<Item = OsString>) -> Result<Vec<String>, String> {
    args.into_iter()
        .map(|a| {
            a.into_string().map_err(|a| {
                format!(
                    "argument `{}` is not valid UTF-8 (arguments must be UTF-8 text)",
                    a.to_string_lossy()
                )
            })
        })
        .collect()
}

/// The value of `flag`, a whole number in `lo..=hi` written with ASCII digits only (`u64`'s
/// own parser would also take `+5`).
pub fn whole(flag: &str, value: Option<String>, lo: u64, hi: u64) -> Result<u64, String> {
    let v = value.ok_or_else(|| format!("{flag} needs a value (a whole number in {lo}..={hi})"))?;
    let n: u64 = Some(v.as_str())
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{flag}: `{v}` is not a whole number in {lo}..={hi}"))?;
    if n < lo || n > hi {
        return Err(format!("{flag}: {n} is out of range ({lo}..={hi})"));
    }
    Ok(n)
}

/// Fails now, not when the results are written at exit, if `path` cannot be written: opens it
/// for writing, creating it (empty) if it does not exist. Its contents are replaced later.
pub fn check_writable(flag: &str, path: &str) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(|_| ())
        .map_err(|e| format!("{flag}: cannot write `{path}`: {e}"))
}

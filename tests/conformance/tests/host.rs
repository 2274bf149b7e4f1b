//! Runs every conformance case on the host, each on a fresh thread (so each has its own
//! loop), and prints `N passed, N failed`. An argument filters cases by substring.

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let (mut passed, mut failed) = (0, 0);
    for case in uasyncio_conformance::cases() {
        if !filter.is_empty() && !filter.iter().any(|f| case.name.contains(f.as_str())) {
            continue;
        }
        let start = Instant::now();
        let outcome = std::thread::Builder::new()
            .name(case.name.into())
            .spawn(case.run)
            .map_err(|e| e.to_string())
            .and_then(|h| h.join().map_err(|_| "panicked".to_string()));
        match outcome {
            Ok(Ok(())) => {
                passed += 1;
                println!("ok   {} ({:.1?})", case.name, start.elapsed());
            }
            Ok(Err(e)) | Err(e) => {
                failed += 1;
                println!("FAIL {}: {e}", case.name);
            }
        }
    }
    println!("conformance: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

//! Helper of `scripts/compare-postgres.sh`: normalises pgbench and sysbench
//! results and tabulates comparison rounds (see `teller_perf::compare`).

use std::process::ExitCode;

use teller_perf::compare::cli::{run, CompareError};

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CompareError::Usage(e)) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("teller-compare: {e}");
            ExitCode::FAILURE
        }
    }
}

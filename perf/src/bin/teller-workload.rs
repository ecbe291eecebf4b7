//! Stand-alone wrapper around `teller workload ...` for running the drivers
//! without the `teller` binary: `teller-workload bank init --url ...`.

fn main() -> std::process::ExitCode {
    teller_perf::run_cli(std::env::args().skip(1).collect())
}

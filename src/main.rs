//! `recognize-agent`: the agent's command line.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

//! `server [HOST] [PORT] --model NAME`: any concurrency model, in any mode.
//!
//! `server --model list` prints the models, one line each. `server1`–`server4`
//! are this with the model (and, for `server4`, the mode) fixed.
use std::process::ExitCode;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::Args;
use cli::ServerArgs;
use switchboard::mode;
use switchboard::strategy::{self, Model, MODELS};

/// `--model`: a model from the library's list, or `list`.
#[derive(Debug, Clone, Copy)]
enum Choice {
    List,
    Model(&'static Model),
}

#[derive(Debug, Args)]
struct Options {
    /// The concurrency model; `list` prints them all.
    #[arg(long, value_name = "NAME", value_parser = model_parser())]
    model: Choice,
    /// Threads for the models that have workers [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,
    #[command(flatten)]
    server: ServerArgs,
}

fn model_parser() -> impl TypedValueParser<Value = Choice> {
    let models = MODELS
        .iter()
        .map(|m| PossibleValue::new(m.name).help(m.about));
    let list = PossibleValue::new("list").help("print the models, one line each");
    PossibleValuesParser::new(models.chain([list])).try_map(|name| match name.as_str() {
        "list" => Ok(Choice::List),
        name => strategy::find(name)
            .map(Choice::Model)
            .ok_or("no such model"),
    })
}

fn main() -> ExitCode {
    let options: Options = cli::parse_args(
        "server",
        "Serves the line protocol with any concurrency model (--model list shows them)",
        |command| {
            cli::with_default_mode(command, &mode::chat::ENTRY)
                .override_usage("server [HOST] [PORT] --model <NAME> [OPTIONS]")
        },
    );
    let model = match options.model {
        Choice::Model(model) => model,
        Choice::List => {
            let width = MODELS.iter().map(|m| m.name.len()).max().unwrap_or(0);
            for model in MODELS {
                println!("{:width$}  {}", model.name, model.about);
            }
            return ExitCode::SUCCESS;
        }
    };
    let args = options.server;
    let address = args.address.or_exit("server");
    cli::init_logging(&args.verbosity);
    let mut server = args.server();
    if let Some(workers) = options.workers {
        server.workers = workers.into();
    }
    cli::exit_code("server", cli::run(model, &address, server))
}

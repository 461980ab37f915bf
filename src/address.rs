//! `[HOST] [PORT]` on the binaries' command lines: clap's side of
//! [`switchboard::address`], which says what they mean.

use clap::Args;

pub use switchboard::address::{check_host, parse, Address, Refusal};

/// `[HOST] [PORT]` as typed, before [`parse`] checks them.
#[derive(Debug, Args)]
pub struct AddressArgs {
    /// A name (`localhost`), an IPv4 or an IPv6 literal (`::1`); a number
    /// typed alone is the PORT [default: 127.0.0.1]
    #[arg(value_name = "HOST")]
    host: Option<String>,
    /// The port; a server given 0 picks any free one [default: 5000]
    #[arg(value_name = "PORT")]
    port: Option<u16>,
}

impl AddressArgs {
    /// The address typed, or exit 2 (a usage error) after one line on stderr
    /// saying why, with nothing looked up.
    pub fn or_exit(&self, name: &str) -> Address {
        parse(self.host.as_deref(), self.port).unwrap_or_else(|refusal| {
            eprintln!("{name}: {refusal}");
            std::process::exit(2)
        })
    }
}

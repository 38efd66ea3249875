//! `ltv schema`: the table schemas the lake validates against, and the marts' MySQL DDL.

use clap::Subcommand;

use crate::schema::{Registry, mart_ddl};

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Print one table's schema, e.g. `sim.events` or `mart.campaign_daily`.
    Show {
        /// Qualified table name (`layer.table`).
        table: String,
    },
    /// List every table with its description.
    List,
    /// Print the MySQL DDL of every mart table.
    Ddl,
}

pub fn run(cmd: SchemaCommand) -> anyhow::Result<()> {
    let registry = Registry::embedded()?;
    match cmd {
        SchemaCommand::Show { table } => print!("{}", registry.get(&table)?.describe()),
        SchemaCommand::List => {
            for t in registry.tables() {
                println!("{:<28} {}", t.qualified_name(), t.description);
            }
        }
        SchemaCommand::Ddl => print!("{}", mart_ddl(registry)),
    }
    Ok(())
}

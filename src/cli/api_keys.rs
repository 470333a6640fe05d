//! `sightline apikey create|list|revoke`: ingest keys in the data dir's metadata store.

use super::ApiKeyCommand;
use crate::meta::MetaStore;

/// Runs one `apikey` command.
pub async fn run(command: ApiKeyCommand) -> anyhow::Result<()> {
    let open = |dir: &std::path::Path| -> anyhow::Result<MetaStore> {
        std::fs::create_dir_all(dir)?;
        Ok(MetaStore::open(dir)?)
    };
    match command {
        ApiKeyCommand::Create {
            name,
            records_per_second,
            data_dir,
        } => {
            let (key, record) = open(&data_dir)?
                .create_api_key(&name, records_per_second)
                .await?;
            eprintln!(
                "created key {:?} ({}); it is shown only now. OTLP exporters send it as \
                 `Authorization: Bearer <key>` (OTEL_EXPORTER_OTLP_HEADERS=\"Authorization=Bearer <key>\").",
                record.name,
                match record.records_per_second {
                    0 => "no rate limit".to_string(),
                    n => format!("{n} records/s"),
                }
            );
            println!("{key}");
        }
        ApiKeyCommand::List { data_dir } => {
            for k in open(&data_dir)?.api_keys().await? {
                let at = |ns: i64| {
                    chrono::DateTime::from_timestamp_nanos(ns)
                        .format("%Y-%m-%d %H:%M")
                        .to_string()
                };
                println!(
                    "{:<24} {:>12} records/s  created {}{}",
                    k.name,
                    if k.records_per_second == 0 {
                        "unlimited".to_string()
                    } else {
                        k.records_per_second.to_string()
                    },
                    at(k.created),
                    k.revoked
                        .map(|r| format!("  REVOKED {}", at(r)))
                        .unwrap_or_default()
                );
            }
        }
        ApiKeyCommand::Revoke { name, data_dir } => {
            open(&data_dir)?.revoke_api_key(&name).await?;
            println!("revoked {name:?}");
        }
    }
    Ok(())
}

//! `sightline apikey create|list|revoke` and `sightline user add|list|remove`: ingest keys
//! and UI/API users in the data dir's metadata store.

use super::{ApiKeyCommand, MetaLocation, UserCommand};
use crate::meta::MetaStore;

async fn open(store: &MetaLocation) -> anyhow::Result<MetaStore> {
    if let Some(url) = &store.metastore {
        let pool = crate::metastore::connect_pool(url, 1).await?;
        return Ok(MetaStore::postgres(pool).await?);
    }
    std::fs::create_dir_all(&store.data_dir)?;
    Ok(MetaStore::open(&store.data_dir)?)
}

/// Runs one `user` command.
pub async fn users(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            role,
            replace,
            store,
        } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let user = open(&store)
                .await?
                .put_user(&name, role, password, replace)
                .await?;
            println!("{} is a {}", user.name, user.role.as_str());
        }
        UserCommand::List { store } => {
            for u in open(&store).await?.users().await? {
                println!("{:<24} {}", u.name, u.role.as_str());
            }
        }
        UserCommand::Remove { name, store } => {
            open(&store).await?.remove_user(&name).await?;
            println!("removed {name:?}");
        }
    }
    Ok(())
}

/// Runs one `apikey` command.
pub async fn run(command: ApiKeyCommand) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::Create {
            name,
            records_per_second,
            store,
        } => {
            let (key, record) = open(&store)
                .await?
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
        ApiKeyCommand::List { store } => {
            for k in open(&store).await?.api_keys().await? {
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
        ApiKeyCommand::Revoke { name, store } => {
            open(&store).await?.revoke_api_key(&name).await?;
            println!("revoked {name:?}");
        }
    }
    Ok(())
}

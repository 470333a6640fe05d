//! `sightline postmortem export ID --out DIR`: fetches a post-mortem's export from a running
//! server and writes the Markdown and its SVG charts into a folder.

use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value;

/// Writes `DIR/postmortem-ID.md` and its chart files; prints what it wrote.
pub async fn run(api: &str, id: i64, out: &Path) -> anyhow::Result<()> {
    let export = super::remote::get(&format!(
        "{}/postmortems/{id}/export.json",
        api.trim_end_matches('/')
    ))
    .await?;
    let markdown = export
        .get("markdown")
        .and_then(Value::as_str)
        .context("the server's export has no markdown")?;
    std::fs::create_dir_all(out).with_context(|| format!("could not create {}", out.display()))?;
    let md_path = out.join(format!("postmortem-{id}.md"));
    std::fs::write(&md_path, markdown)
        .with_context(|| format!("could not write {}", md_path.display()))?;
    let files = export
        .get("files")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for f in &files {
        let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
        // Names come from the server; never let one climb out of the folder.
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            bail!("the server sent a file with an unsafe name: {name:?}");
        }
        let content = f.get("content").and_then(Value::as_str).unwrap_or_default();
        std::fs::write(out.join(name), content)
            .with_context(|| format!("could not write {name}"))?;
    }
    println!(
        "wrote {} and {} chart file{}",
        md_path.display(),
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

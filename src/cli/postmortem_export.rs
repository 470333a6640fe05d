//! `sightline postmortem export ID --out DIR`: fetches a post-mortem's export from a running
//! server and writes the Markdown and its SVG charts into a folder.

use std::path::Path;

use anyhow::{bail, Context};
use serde::Deserialize;

/// The server's export of a post-mortem (`/postmortems/ID/export.json`).
#[derive(Deserialize)]
struct Export {
    markdown: String,
    #[serde(default)]
    files: Vec<ExportFile>,
}

/// One chart file of an export.
#[derive(Deserialize)]
struct ExportFile {
    name: String,
    content: String,
}

/// Fetches the export of post-mortem `id` from the server at `api`.
async fn fetch(api: &str, id: i64) -> anyhow::Result<Export> {
    let url = format!("{}/postmortems/{id}/export.json", api.trim_end_matches('/'));
    super::api_get::get_json(&url).await
}

/// Writes `DIR/postmortem-ID.md` and its chart files; prints what it wrote.
pub async fn run(api: &str, id: i64, out: &Path) -> anyhow::Result<()> {
    let export = fetch(api, id).await?;
    let markdown = &export.markdown;
    std::fs::create_dir_all(out).with_context(|| format!("could not create {}", out.display()))?;
    let md_path = out.join(format!("postmortem-{id}.md"));
    std::fs::write(&md_path, markdown)
        .with_context(|| format!("could not write {}", md_path.display()))?;
    let files = &export.files;
    for f in files {
        let name = f.name.as_str();
        // Names come from the server; never let one climb out of the folder.
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            bail!("the server sent a file with an unsafe name: {name:?}");
        }
        std::fs::write(out.join(name), &f.content)
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

//! The notebook: saved views, post-mortems and annotations ([`crate::meta`]) together with
//! pinned evidence ([`crate::evidence`]), the one handle the API and the UI act through.

mod annotations;
mod postmortems;
mod views;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::evidence::{PinError, PinOutcome, PinProgress, Pins, PIN_WAIT};
use crate::meta::views::{NewView, PageAddress, SavedView};
use crate::meta::{MetaError, MetaStore};
use crate::model::window::TimeParams;
use crate::query::{QueryEngine, QueryError};

/// Saved views, post-mortems, annotations and evidence of one data dir.
#[derive(Clone)]
pub struct Notebook {
    /// The metadata database; pages and handlers act through the notebook's methods.
    meta: MetaStore,
    pins: Pins,
    /// The token HTML forms carry so another site cannot post them (see `web::forms`).
    pub form_token: Arc<str>,
}

impl Notebook {
    /// Opens the notebook of `data_dir` over its metadata database, dropping evidence no
    /// pinned view refers to.
    pub async fn open(data_dir: &Path, meta: MetaStore) -> anyhow::Result<Notebook> {
        let pins = Pins::open(data_dir).context("could not create the evidence folder")?;
        pins.remove_unreferenced(&meta.pinned_view_ids().await?);
        let form_token = meta.form_token().await?.into();
        Ok(Notebook {
            meta,
            pins,
            form_token,
        })
    }

    /// Saves a view and, when asked, pins its evidence. A window not given is the URL's own
    /// (its `range` or `from`/`to` at this moment), or the trace's span for a trace page.
    pub async fn save_view(
        &self,
        engine: &QueryEngine,
        new: NewView,
        pin: bool,
    ) -> Result<SavedView, PinError> {
        let address = PageAddress::parse(&new.url)?;
        let (start, end) = match (new.start, new.end, address.trace_id()) {
            (Some(s), Some(e), _) => (s, e),
            (_, _, Some(trace_id)) => {
                let trace_id = trace_id?;
                let trace = engine.trace(trace_id).await?.ok_or_else(|| {
                    MetaError::NotFound(format!("trace {trace_id} is not stored"))
                })?;
                (
                    trace.start_time_unix_nano,
                    trace.end_time_unix_nano.max(trace.start_time_unix_nano + 1),
                )
            }
            _ => {
                let params: TimeParams = time_params_of(address.query);
                let w = params
                    .resolve(crate::model::time::now_ns())
                    .map_err(|e| QueryError::BadRequest(format!("the url's time range: {e}")))?;
                (w.start, w.end)
            }
        };
        let view = self.meta.create_view(new, start, end).await?;
        if !pin {
            return Ok(view);
        }
        let ticket = self.pins.start_pin(&self.meta, engine, &view)?;
        match ticket.wait(PIN_WAIT).await {
            PinOutcome::Done(Ok(pinned)) => Ok(pinned),
            PinOutcome::Done(Err(e)) => {
                // A view that could not keep its evidence is not saved half-way.
                let _ = self.delete_view(view.id).await;
                Err(e)
            }
            // Still copying: the view is saved, and its page shows the pin's progress (or
            // why it failed, leaving the view on live data).
            PinOutcome::Running => Ok(view),
        }
    }

    /// Pins a saved view's rows out of `engine` again (replacing an older pin), waiting for
    /// the job at most [`PIN_WAIT`]: the view as it is then (pinned, or still pinning).
    pub async fn pin_view(&self, engine: &QueryEngine, id: i64) -> Result<SavedView, PinError> {
        let view = self.meta.view(id).await?;
        let ticket = self.pins.start_pin(&self.meta, engine, &view)?;
        match ticket.wait(PIN_WAIT).await {
            PinOutcome::Done(outcome) => outcome,
            PinOutcome::Running => Ok(view),
        }
    }

    /// Where view `id`'s pin job is, while one runs or after one failed.
    pub fn pin_progress(&self, id: i64) -> Option<PinProgress> {
        self.pins.progress(id)
    }

    /// Deletes a view and its evidence.
    pub async fn delete_view(&self, id: i64) -> Result<SavedView, MetaError> {
        let view = self.meta.delete_view(id).await?;
        self.pins.remove(id);
        Ok(view)
    }

    /// Drops a view's evidence; it then opens on whatever live data is left.
    pub async fn unpin_view(&self, id: i64) -> Result<SavedView, MetaError> {
        if self.pin_progress(id).is_some_and(|p| p.is_running()) {
            return Err(MetaError::Conflict(format!(
                "view {id} is being pinned; unpin it once that is done"
            )));
        }
        let view = self.meta.set_pin(id, None).await?;
        self.pins.remove(id);
        Ok(view)
    }
}

/// The time picker fields of a URL query.
fn time_params_of(query: &str) -> TimeParams {
    let mut params = TimeParams::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "range" => params.range = Some(v.into_owned()),
            "from" => params.from = Some(v.into_owned()),
            "to" => params.to = Some(v.into_owned()),
            _ => {}
        }
    }
    params
}

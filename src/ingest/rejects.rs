//! Counting records dropped one by one, for OTLP `partial_success`.

/// Records rejected while converting one request, with the first reason as an example.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rejects {
    /// How many records were dropped.
    pub count: i64,
    /// The first reason, so the sender learns what to fix without a flood of messages.
    pub first_message: Option<String>,
}

impl Rejects {
    /// Counts one dropped record; keeps the first message only.
    pub fn reject(&mut self, message: impl FnOnce() -> String) {
        self.count += 1;
        if self.first_message.is_none() {
            self.first_message = Some(message());
        }
    }

    /// The message for `partial_success`, naming how many records were dropped.
    pub fn message(&self) -> String {
        match &self.first_message {
            Some(m) if self.count > 1 => format!("{m} (and {} more rejected)", self.count - 1),
            Some(m) => m.clone(),
            None => String::new(),
        }
    }
}

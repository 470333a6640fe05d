//! An alert's life, one evaluation at a time: inactive → pending → firing → resolved, with
//! `for` holding a short spike back and a hold time damping flapping (a firing or resolved
//! alert keeps its phase at least `hold_nano` — two evaluation intervals — before it changes
//! again).

use crate::meta::alerts::{AlertState, Phase, Transition};

/// What one evaluation found for one alert.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    pub value: Option<f64>,
    pub breached: bool,
}

/// The alert's next state, and the transition when its phase changed.
pub fn advance(
    prev: Option<&AlertState>,
    rule_id: i64,
    group_key: &str,
    reading: Reading,
    for_nano: i64,
    hold_nano: i64,
    now: i64,
) -> (AlertState, Option<Transition>) {
    let mut next = prev.cloned().unwrap_or(AlertState {
        rule_id,
        group_key: group_key.to_string(),
        phase: Phase::Inactive,
        value: None,
        since: now,
        fired: None,
        resolved: None,
        notified: 0,
    });
    next.value = reading.value;
    let held = now - next.since >= hold_nano;
    let to = match (next.phase, reading.breached) {
        (Phase::Inactive, true) => Some(if for_nano == 0 {
            Phase::Firing
        } else {
            Phase::Pending
        }),
        (Phase::Resolved, true) if held => Some(if for_nano == 0 {
            Phase::Firing
        } else {
            Phase::Pending
        }),
        (Phase::Pending, true) if now - next.since >= for_nano => Some(Phase::Firing),
        (Phase::Pending, false) => Some(Phase::Inactive),
        (Phase::Firing, false) if held => Some(Phase::Resolved),
        _ => None,
    };
    let Some(to) = to else {
        return (next, None);
    };
    let transition = Transition {
        rule_id,
        group_key: group_key.to_string(),
        at: now,
        from: next.phase,
        to,
        value: reading.value,
    };
    next.phase = to;
    next.since = now;
    match to {
        Phase::Firing => next.fired = Some(now),
        Phase::Resolved => next.resolved = Some(now),
        _ => {}
    }
    (next, Some(transition))
}

/// The notification an alert is due, if any: `firing` once per firing and again every
/// `repeat_nano` while it fires; `resolved` once per resolution of a firing that was told.
pub fn due(state: &AlertState, repeat_nano: i64, now: i64) -> Option<&'static str> {
    match state.phase {
        Phase::Firing => {
            let fired = state.fired.unwrap_or(state.since);
            let never = state.notified == 0 || state.notified < fired;
            (never || now - state.notified >= repeat_nano).then_some("firing")
        }
        // Only an alert whose firing went out (not silenced, or with no receivers to tell)
        // gets a resolved message.
        Phase::Resolved => {
            let resolved = state.resolved.unwrap_or(state.since);
            let fired = state.fired.unwrap_or(0);
            (state.notified >= fired && state.notified < resolved).then_some("resolved")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn step(
        prev: Option<&AlertState>,
        breached: bool,
        for_secs: i64,
        now_secs: i64,
    ) -> (AlertState, Option<Transition>) {
        let reading = Reading {
            value: Some(if breached { 1.0 } else { 0.0 }),
            breached,
        };
        advance(prev, 7, "", reading, for_secs * S, 30 * S, now_secs * S)
    }

    #[test]
    fn for_holds_back_a_short_spike_and_a_long_one_fires() {
        let (s, t) = step(None, true, 60, 0);
        assert_eq!(
            (s.phase, t.map(|t| t.to)),
            (Phase::Pending, Some(Phase::Pending))
        );
        let (s, t) = step(Some(&s), false, 60, 15);
        assert_eq!(
            (s.phase, t.map(|t| t.from)),
            (Phase::Inactive, Some(Phase::Pending)),
            "a spike"
        );
        let (s, _) = step(Some(&s), true, 60, 30);
        let (s, t) = step(Some(&s), true, 60, 75);
        assert_eq!(s.phase, Phase::Pending, "not yet held for 60 s");
        assert!(t.is_none());
        let (s, t) = step(Some(&s), true, 60, 90);
        assert_eq!((s.phase, s.fired), (Phase::Firing, Some(90 * S)));
        assert_eq!(t.unwrap().from, Phase::Pending);
    }

    #[test]
    fn firing_resolves_after_the_hold_and_notifications_are_due_once() {
        let (s, _) = step(None, true, 0, 0);
        assert_eq!(s.phase, Phase::Firing);
        assert_eq!(due(&s, 3600 * S, 0), Some("firing"));
        let mut s = s;
        s.notified = 1;
        assert_eq!(due(&s, 3600 * S, 10 * S), None, "sent once");
        assert_eq!(
            due(&s, 3600 * S, 3601 * S),
            Some("firing"),
            "repeated while firing"
        );
        // Recovers after 10 s: held, still firing; after 30 s it resolves.
        let (s, t) = step(Some(&s), false, 0, 10);
        assert_eq!((s.phase, t.is_none()), (Phase::Firing, true));
        let (s, t) = step(Some(&s), false, 0, 31);
        assert_eq!((s.phase, t.unwrap().to), (Phase::Resolved, Phase::Resolved));
        assert_eq!(due(&s, 3600 * S, 31 * S), Some("resolved"));
        // Breaking again within the hold does not flap back at once.
        let (s, t) = step(Some(&s), true, 0, 40);
        assert_eq!((s.phase, t.is_none()), (Phase::Resolved, true));
        let (s, _) = step(Some(&s), true, 0, 62);
        assert_eq!(s.phase, Phase::Firing);
    }
}

//! Single-flight: concurrent misses for the same prompt, or for a paraphrase of a prompt already
//! being computed in the same scope, wait for one computation instead of each calling the model.

use crate::error::Error;
use crate::key::Key;
use crate::relevance::Guards;
use crate::scope::Scope;
use crate::vector::distance::similarity;
use event_listener::Event;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// How a flight ended, as its followers see it.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The leader inserted its value: look again.
    Done,
    /// The leader's compute (or its insert) failed: followers get the same error (nothing was cached).
    Failed(Error),
    /// The leader was dropped (panic or cancelled future): followers race to lead again.
    Abandoned,
}

pub(crate) struct Flight {
    scope: Scope,
    prompt: Box<str>,
    vector: Arc<[f32]>,
    threshold: f32,
    outcome: Mutex<Option<Outcome>>,
    done: Event,
}

#[derive(Default)]
pub(crate) struct InFlight {
    flights: Mutex<HashMap<Key, Arc<Flight>>>,
}

pub(crate) enum Role<'a> {
    Leader(LeaderGuard<'a>),
    Follower(Arc<Flight>),
}

impl InFlight {
    /// Follow a flight for `key`, or for a prompt in `scope` whose vector is at least `threshold`
    /// similar and that `guards` let answer `prompt`; otherwise lead a new one.
    pub(crate) fn join(
        &self,
        key: Key,
        scope: &Scope,
        prompt: &str,
        vector: &Arc<[f32]>,
        threshold: f32,
        guards: Guards,
    ) -> Role<'_> {
        let mut flights = self.flights.lock();
        if let Some(f) = flights.get(&key) {
            return Role::Follower(f.clone());
        }
        // In-flight computations are few (bounded by concurrent callers), so a scan is cheap.
        let paraphrase = flights.values().find(|f| {
            f.scope == *scope
                && similarity(&f.vector, vector) >= threshold.max(f.threshold)
                && guards.check(&f.prompt, prompt).is_ok()
        });
        if let Some(f) = paraphrase {
            return Role::Follower(f.clone());
        }
        let flight = Arc::new(Flight {
            scope: scope.clone(),
            prompt: prompt.into(),
            vector: vector.clone(),
            threshold,
            outcome: Mutex::new(None),
            done: Event::new(),
        });
        flights.insert(key, flight.clone());
        Role::Leader(LeaderGuard {
            set: self,
            key,
            flight,
            finished: false,
        })
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.flights.lock().len()
    }
}

impl Flight {
    fn outcome(&self) -> Option<Outcome> {
        self.outcome.lock().clone()
    }

    /// Wait, without blocking the executor, until the leader finishes.
    pub(crate) async fn wait_async(&self) -> Outcome {
        loop {
            if let Some(o) = self.outcome() {
                return o;
            }
            let listener = self.done.listen();
            if let Some(o) = self.outcome() {
                return o;
            }
            listener.await;
        }
    }
}

/// Held by the one caller computing a value; finishing (or dropping) it releases the followers.
pub(crate) struct LeaderGuard<'a> {
    set: &'a InFlight,
    key: Key,
    flight: Arc<Flight>,
    finished: bool,
}

impl LeaderGuard<'_> {
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.release(outcome);
    }

    fn release(&mut self, outcome: Outcome) {
        self.finished = true;
        {
            let mut flights = self.set.flights.lock();
            if flights
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                flights.remove(&self.key);
            }
        }
        *self.flight.outcome.lock() = Some(outcome);
        self.flight.done.notify(usize::MAX);
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.release(Outcome::Abandoned);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: f32, y: f32) -> Arc<[f32]> {
        Arc::from(vec![x, y])
    }

    #[test]
    fn same_key_and_paraphrase_follow_other_scope_leads() {
        let set = InFlight::default();
        let s = Scope::named("s");
        let Role::Leader(g) = set.join([1; 16], &s, "q", &v(1.0, 0.0), 0.9, Guards::all()) else {
            panic!()
        };
        assert!(matches!(
            set.join([1; 16], &s, "q", &v(0.0, 1.0), 0.9, Guards::all()),
            Role::Follower(_)
        ));
        assert!(matches!(
            set.join([2; 16], &s, "q", &v(0.99, 0.05), 0.9, Guards::all()),
            Role::Follower(_)
        ));
        let Role::Leader(other) = set.join(
            [2; 16],
            &Scope::named("t"),
            "q",
            &v(1.0, 0.0),
            0.9,
            Guards::all(),
        ) else {
            panic!("another scope must never follow this scope's flight")
        };
        let Role::Follower(f) = set.join([1; 16], &s, "q", &v(1.0, 0.0), 0.9, Guards::all()) else {
            panic!()
        };
        g.finish(Outcome::Done);
        assert!(matches!(pollster::block_on(f.wait_async()), Outcome::Done));
        drop(other);
        assert_eq!(set.len(), 0);
    }

    #[test]
    fn a_paraphrase_the_guards_turn_away_leads_its_own_flight() {
        let set = InFlight::default();
        let s = Scope::global();
        let Role::Leader(_g) = set.join(
            [1; 16],
            &s,
            "after 2 years",
            &v(1.0, 0.0),
            0.9,
            Guards::all(),
        ) else {
            panic!()
        };
        let close = v(0.99, 0.05);
        assert!(matches!(
            set.join([2; 16], &s, "after 20 years", &close, 0.9, Guards::all()),
            Role::Leader(_)
        ));
        assert!(matches!(
            set.join([3; 16], &s, "after 20 years", &close, 0.9, Guards::none()),
            Role::Follower(_)
        ));
    }

    #[test]
    fn dropped_leader_abandons() {
        let set = InFlight::default();
        let s = Scope::global();
        let Role::Leader(g) = set.join([1; 16], &s, "q", &v(1.0, 0.0), 0.9, Guards::all()) else {
            panic!()
        };
        let Role::Follower(f) = set.join([1; 16], &s, "q", &v(1.0, 0.0), 0.9, Guards::all()) else {
            panic!()
        };
        let waiter = std::thread::spawn(move || pollster::block_on(f.wait_async()));
        drop(g);
        assert!(matches!(waiter.join().unwrap(), Outcome::Abandoned));
    }
}

//! Single-flight: concurrent misses for the same prompt, or for a paraphrase of a prompt already
//! being computed in the same scope, wait for one computation instead of each calling the model.
//!
//! A compute that itself calls `get_or_insert_with` for the same prompt (or a paraphrase) must
//! not wait for its own flight: that wait would never end. While a leader's compute is polled,
//! its flight is recorded for the polling thread ([`Leading`]); a call that would follow a flight
//! recorded on its own thread runs alone instead ([`Role::Alone`]): it computes without joining.

use crate::error::Error;
use crate::key::Key;
use crate::relevance::{Guards, PairCheck};
use crate::scope::Scope;
use crate::vector::distance::similarity;
use event_listener::Event;
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

thread_local! {
    /// Flights whose leader's compute is being polled on this thread, innermost last.
    static LEADING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

fn flight_id(flight: &Arc<Flight>) -> usize {
    Arc::as_ptr(flight) as usize
}

fn led_here(flight: &Arc<Flight>) -> bool {
    let id = flight_id(flight);
    LEADING.with(|l| l.borrow().contains(&id))
}

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
    /// The flight to follow is led by a compute being polled on this very thread (a re-entrant
    /// call): compute without joining.
    Alone,
}

impl InFlight {
    /// Follow a flight for `key`, or for a prompt in `scope` whose vector is at least `threshold`
    /// similar and that `guards` and the pair `check` let answer `prompt`; otherwise lead a new
    /// one.
    #[expect(
        clippy::too_many_arguments,
        reason = "the flight's identity, its vector and the relevance settings, each used once"
    )]
    pub(crate) fn join(
        &self,
        key: Key,
        scope: &Scope,
        prompt: &str,
        vector: &Arc<[f32]>,
        threshold: f32,
        guards: Guards,
        check: Option<&PairCheck>,
    ) -> Role<'_> {
        let mut flights = self.flights.lock();
        if let Some(f) = flights.get(&key) {
            return if led_here(f) {
                Role::Alone
            } else {
                Role::Follower(f.clone())
            };
        }
        // In-flight computations are few (bounded by concurrent callers), so a scan is cheap.
        let paraphrase = flights.values().find(|f| {
            f.scope == *scope
                && similarity(&f.vector, vector) >= threshold.max(f.threshold)
                && guards.check(&f.prompt, prompt).is_ok()
                && check.is_none_or(|c| c.check(&f.prompt, &f.vector, prompt, vector).is_ok())
        });
        if let Some(f) = paraphrase {
            return if led_here(f) {
                Role::Alone
            } else {
                Role::Follower(f.clone())
            };
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
    /// `fut` (the leader's compute), recording this flight for whichever thread polls it.
    pub(crate) fn leading<F: Future>(&self, fut: F) -> Leading<F> {
        Leading {
            id: flight_id(&self.flight),
            // Boxed so `Leading` is `Unpin` without unsafe pin projection; one allocation per
            // model call.
            fut: Box::pin(fut),
        }
    }

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

/// A leader's compute future; see the module docs.
pub(crate) struct Leading<F> {
    id: usize,
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for Leading<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        LEADING.with(|l| l.borrow_mut().push(self.id));
        // Popped even if the compute panics, so the thread's record stays true.
        struct Pop;
        impl Drop for Pop {
            fn drop(&mut self) {
                LEADING.with(|l| l.borrow_mut().pop());
            }
        }
        let _pop = Pop;
        self.fut.as_mut().poll(cx)
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
        let Role::Leader(g) = set.join([1; 16], &s, "q", &v(1.0, 0.0), 0.9, Guards::all(), None)
        else {
            panic!()
        };
        assert!(matches!(
            set.join([1; 16], &s, "q", &v(0.0, 1.0), 0.9, Guards::all(), None),
            Role::Follower(_)
        ));
        assert!(matches!(
            set.join([2; 16], &s, "q", &v(0.99, 0.05), 0.9, Guards::all(), None),
            Role::Follower(_)
        ));
        let Role::Leader(other) = set.join(
            [2; 16],
            &Scope::named("t"),
            "q",
            &v(1.0, 0.0),
            0.9,
            Guards::all(),
            None,
        ) else {
            panic!("another scope must never follow this scope's flight")
        };
        let Role::Follower(f) = set.join([1; 16], &s, "q", &v(1.0, 0.0), 0.9, Guards::all(), None)
        else {
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
            None,
        ) else {
            panic!()
        };
        let close = v(0.99, 0.05);
        assert!(matches!(
            set.join(
                [2; 16],
                &s,
                "after 20 years",
                &close,
                0.9,
                Guards::all(),
                None
            ),
            Role::Leader(_)
        ));
        assert!(matches!(
            set.join(
                [3; 16],
                &s,
                "after 20 years",
                &close,
                0.9,
                Guards::none(),
                None
            ),
            Role::Follower(_)
        ));
    }

    #[test]
    fn dropped_leader_abandons() {
        let set = InFlight::default();
        let s = Scope::global();
        let Role::Leader(g) = set.join([1; 16], &s, "q", &v(1.0, 0.0), 0.9, Guards::all(), None)
        else {
            panic!()
        };
        let Role::Follower(f) = set.join([1; 16], &s, "q", &v(1.0, 0.0), 0.9, Guards::all(), None)
        else {
            panic!()
        };
        let waiter = std::thread::spawn(move || pollster::block_on(f.wait_async()));
        drop(g);
        assert!(matches!(waiter.join().unwrap(), Outcome::Abandoned));
    }
}

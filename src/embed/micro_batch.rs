//! Micro-batching of concurrent embeddings: callers that arrive while a batch is being embedded
//! are embedded together in the next one, by one of them, so that eight concurrent misses cost one
//! batched forward pass rather than eight single ones competing for the same cores.
//!
//! A lone caller never waits: a caller that finds the model idle, with no batch of several texts
//! just ended, embeds its text at once, alone. Callers that arrive while the model is busy queue;
//! when the running batch ends, one of them leads the next batch with everything queued.
//!
//! The one deliberate wait is bounded by [`MicroBatcher::max_wait`] (1 ms by default): a leader
//! that follows a batch of several texts waits at most that long for as many texts as were active
//! around that batch (its texts plus those queued), because their callers, when they are a
//! steady set of concurrent missers, ask again within microseconds. Without it, eight callers
//! split into two cohorts of four that alternate, and the model runs batches of four (327 texts/s
//! where batches of eight give 360, embed_bench).

use super::Embedder;
use crate::error::BoxError;
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// An [`Embedder`] whose [`embed`](Embedder::embed) calls from concurrent threads are merged into
/// batches for the wrapped embedder's [`embed_batch`](Embedder::embed_batch).
///
/// A lone caller never waits: with the model idle, `embed` runs a batch of one at once. Callers
/// that arrive while a batch runs queue; when it ends, one of them embeds everything queued (up to
/// [`max_batch`](Self::max_batch) texts) in one batch and hands each caller its vector. After a
/// batch of several texts, the next batch's leader waits at most [`max_wait`](Self::max_wait)
/// for the callers of that batch to come back (steady concurrent misses do, within microseconds). An error
/// from the wrapped embedder reaches every caller of that batch. `BertEmbedder` (feature `bert`)
/// batches this way on its own; wrap your own model in it when its batched calls are cheaper per
/// text than its single ones (a local model, a batching HTTP endpoint).
///
/// ```
/// use paracache::{Embedder, HashEmbedder, MicroBatcher};
/// let e = MicroBatcher::new(HashEmbedder::new(64)).max_batch(16);
/// std::thread::scope(|s| {
///     for i in 0..8 {
///         let e = &e;
///         s.spawn(move || assert_eq!(e.embed(&format!("question {i}")).unwrap().len(), 64));
///     }
/// });
/// let counts = e.counts();
/// assert_eq!(counts.texts, 8);
/// assert!(counts.batches >= 1 && counts.batches <= 8);
/// assert_eq!(e.model_id(), HashEmbedder::new(64).model_id());
/// ```
pub struct MicroBatcher<E> {
    inner: E,
    max_batch: usize,
    max_wait: Duration,
    state: Mutex<State>,
    /// A batch ended: its results are posted and the model is free.
    finished: Condvar,
    /// A text was queued (a gathering leader counts them).
    arrived: Condvar,
}

#[derive(Default)]
struct State {
    /// A batch is being embedded.
    running: bool,
    queue: VecDeque<(u64, String)>,
    results: HashMap<u64, Result<Vec<f32>, String>>,
    next_id: u64,
    counts: BatchCounts,
    /// Texts in the last batch, and when it ended.
    last_batch: usize,
    last_end: Option<Instant>,
}

/// How many batches a [`MicroBatcher`] ran and how many texts they held, so far.
///
/// ```
/// use paracache::{Embedder, HashEmbedder, MicroBatcher};
/// let e = MicroBatcher::new(HashEmbedder::new(8));
/// e.embed("alone").unwrap();
/// assert_eq!(e.counts(), paracache::BatchCounts { batches: 1, texts: 1 });
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Calls to the wrapped embedder's `embed_batch` made for `embed` callers.
    pub batches: u64,
    /// Texts embedded in them.
    pub texts: u64,
}

impl<E: std::fmt::Debug> std::fmt::Debug for MicroBatcher<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicroBatcher")
            .field("inner", &self.inner)
            .field("max_batch", &self.max_batch)
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

impl<E: Embedder> MicroBatcher<E> {
    /// Texts per batch unless [`max_batch`](Self::max_batch) says otherwise: past 32 texts a
    /// CPU model's throughput no longer grows (benches/embed), while the last caller's wait does.
    pub const DEFAULT_MAX_BATCH: usize = 32;

    /// Wraps `inner`.
    ///
    /// ```
    /// let e = paracache::MicroBatcher::new(paracache::HashEmbedder::new(32));
    /// assert_eq!(e.inner().dimension(), 32);
    /// # use paracache::Embedder;
    /// ```
    pub fn new(inner: E) -> Self {
        MicroBatcher {
            inner,
            max_batch: Self::DEFAULT_MAX_BATCH,
            max_wait: Self::DEFAULT_MAX_WAIT,
            state: Mutex::new(State::default()),
            finished: Condvar::new(),
            arrived: Condvar::new(),
        }
    }

    /// How long a leader may wait for texts after a batch of several by default: about a quarter
    /// of one text's forward pass at batch 1 with all-MiniLM-L6-v2 on 2 cores (4 ms), so that a
    /// wait that finds nobody costs little next to what it saves when the callers come back.
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_millis(1);

    /// At most `wait` spent gathering texts before a batch (see the type's docs); zero never
    /// waits, so batches hold only what queued while the model was busy.
    ///
    /// ```
    /// use std::time::Duration;
    /// let e = paracache::MicroBatcher::new(paracache::HashEmbedder::new(32)).max_wait(Duration::ZERO);
    /// # let _ = e;
    /// ```
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// At most `n` texts per batch (at least 1; 1 turns batching off).
    ///
    /// ```
    /// let e = paracache::MicroBatcher::new(paracache::HashEmbedder::new(32)).max_batch(0);
    /// # let _ = e;
    /// ```
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// The wrapped embedder.
    ///
    /// ```
    /// use paracache::Embedder;
    /// let e = paracache::MicroBatcher::new(paracache::HashEmbedder::new(32));
    /// assert_eq!(e.inner().dimension(), 32);
    /// ```
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// The wrapped embedder, to change its settings (no batch can be running: this borrows the
    /// batcher exclusively).
    ///
    /// ```
    /// let mut e = paracache::MicroBatcher::new(paracache::HashEmbedder::new(32));
    /// let _inner: &mut paracache::HashEmbedder = e.inner_mut();
    /// ```
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    /// Batches run and texts embedded for `embed` callers so far.
    ///
    /// ```
    /// let e = paracache::MicroBatcher::new(paracache::HashEmbedder::new(8));
    /// assert_eq!(e.counts().batches, 0);
    /// ```
    pub fn counts(&self) -> BatchCounts {
        self.state.lock().counts
    }

    fn embed_queued(&self, text: &str) -> Result<Vec<f32>, BoxError> {
        let mut state = self.state.lock();
        if !state.running {
            // This caller was most likely in the last batch: expect as many as it held.
            let recent = state
                .last_end
                .is_some_and(|end| end.elapsed() <= self.max_wait);
            let expect = if recent { state.last_batch } else { 1 };
            let others = self.claim(&mut state, expect);
            drop(state);
            return self.lead(text, others);
        }
        let id = state.next_id;
        state.next_id += 1;
        state.queue.push_back((id, text.to_owned()));
        self.arrived.notify_one();
        loop {
            self.finished.wait(&mut state);
            if let Some(result) = state.results.remove(&id) {
                return result.map_err(BoxError::from);
            }
            if !state.running {
                // The batch that ran did not hold this text: lead the next one, with this text in it.
                let at = state.queue.iter().position(|(i, _)| *i == id);
                let (_, own) = at
                    .and_then(|at| state.queue.remove(at))
                    .ok_or("micro-batch lost a queued text")?;
                // The last batch's callers are coming back; those queued with this one are here.
                let expect = state.last_batch + 1 + state.queue.len();
                let others = self.claim(&mut state, expect);
                drop(state);
                return self.lead(&own, others);
            }
        }
    }

    /// Marks a batch as running and takes the queued texts it will hold besides the leader's,
    /// first waiting up to `max_wait` for the queue to hold `expect - 1` of them.
    fn claim(&self, state: &mut MutexGuard<'_, State>, expect: usize) -> Vec<(u64, String)> {
        state.running = true;
        let want = expect.min(self.max_batch).saturating_sub(1);
        if want > state.queue.len() && !self.max_wait.is_zero() {
            let deadline = Instant::now() + self.max_wait;
            while state.queue.len() < want {
                if self.arrived.wait_until(state, deadline).timed_out() {
                    break;
                }
            }
        }
        let take = state.queue.len().min(self.max_batch - 1);
        state.queue.drain(..take).collect()
    }

    fn lead(&self, own: &str, others: Vec<(u64, String)>) -> Result<Vec<f32>, BoxError> {
        // Posts results and frees the model even if the wrapped embedder panics, so that no
        // queued caller waits forever.
        struct Finish<'a, E> {
            batcher: &'a MicroBatcher<E>,
            others: Vec<(u64, String)>,
            vectors: Option<Result<Vec<Vec<f32>>, String>>,
        }
        impl<E> Drop for Finish<'_, E> {
            fn drop(&mut self) {
                let mut state = self.batcher.state.lock();
                let mut vectors = match self.vectors.take() {
                    Some(Ok(v)) => v.into_iter().map(Ok).collect::<Vec<_>>().into_iter(),
                    Some(Err(e)) => vec![Err(e); self.others.len()].into_iter(),
                    None => vec![Err("the embedder panicked".to_string()); self.others.len()]
                        .into_iter(),
                };
                for (id, _) in &self.others {
                    let result = vectors
                        .next()
                        .unwrap_or_else(|| Err("the embedder returned too few vectors".into()));
                    state.results.insert(*id, result);
                }
                state.counts.batches += 1;
                state.counts.texts += 1 + self.others.len() as u64;
                state.last_batch = 1 + self.others.len();
                state.last_end = Some(Instant::now());
                state.running = false;
                drop(state);
                self.batcher.finished.notify_all();
            }
        }
        let mut finish = Finish {
            batcher: self,
            others,
            vectors: None,
        };
        let result = {
            let mut texts = Vec::with_capacity(1 + finish.others.len());
            texts.push(own);
            texts.extend(finish.others.iter().map(|(_, t)| t.as_str()));
            self.inner.embed_batch(&texts)
        };
        let expected = 1 + finish.others.len();
        let outcome = match result {
            Ok(v) if v.len() == expected => Ok(v),
            Ok(v) => Err(format!(
                "the embedder returned {} vectors for {expected} texts",
                v.len()
            )),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(vectors) => {
                let mut vectors = vectors.into_iter();
                let own = vectors.next();
                finish.vectors = Some(Ok(vectors.collect()));
                own.ok_or_else(|| "the embedder returned no vector".into())
            }
            Err(e) => {
                finish.vectors = Some(Err(e.clone()));
                Err(e.into())
            }
        }
    }
}

impl<E: Embedder> Embedder for MicroBatcher<E> {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>, BoxError> {
        if self.max_batch == 1 {
            return self.inner.embed(text);
        }
        self.embed_queued(text)
    }

    /// Already a batch: passed straight to the wrapped embedder.
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BoxError> {
        self.inner.embed_batch(texts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{Receiver, Sender, channel};

    /// An embedder whose batches each wait for the test's go-ahead, so a test decides which
    /// texts are queued while a batch runs. It reports each batch's texts when it starts.
    struct Gated {
        started: Mutex<Sender<Vec<String>>>,
        release: Mutex<Receiver<()>>,
    }

    fn gated() -> (MicroBatcher<Gated>, Receiver<Vec<String>>, Sender<()>) {
        let (started, batches) = channel();
        let (go, release) = channel();
        let inner = Gated {
            started: Mutex::new(started),
            release: Mutex::new(release),
        };
        (
            MicroBatcher::new(inner).max_wait(Duration::ZERO),
            batches,
            go,
        )
    }

    fn vector_of(text: &str) -> Vec<f32> {
        vec![text.len() as f32, 1.0]
    }

    impl Embedder for Gated {
        fn model_id(&self) -> &str {
            "gated"
        }
        fn dimension(&self) -> usize {
            2
        }
        fn embed(&self, text: &str) -> Result<Vec<f32>, BoxError> {
            Ok(self.embed_batch(&[text])?.remove(0))
        }
        fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BoxError> {
            self.started
                .lock()
                .send(texts.iter().map(|t| t.to_string()).collect())
                .unwrap();
            self.release.lock().recv().unwrap();
            if texts.contains(&"panic") {
                panic!("the model broke");
            }
            if texts.contains(&"fail") {
                return Err("the model refused".into());
            }
            Ok(texts.iter().map(|t| vector_of(t)).collect())
        }
    }

    fn queued<E>(b: &MicroBatcher<E>) -> usize {
        b.state.lock().queue.len()
    }

    fn wait_until(mut ready: impl FnMut() -> bool) {
        while !ready() {
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_lone_caller_runs_alone_and_never_waits_out_max_wait() {
        let e = MicroBatcher::new(crate::HashEmbedder::new(16)).max_wait(Duration::from_secs(60));
        let start = Instant::now();
        for text in ["one", "two", "three"] {
            assert_eq!(
                e.embed(text).unwrap(),
                crate::HashEmbedder::new(16).embed(text).unwrap()
            );
        }
        assert_eq!(
            e.counts(),
            BatchCounts {
                batches: 3,
                texts: 3
            }
        );
        // Any wait would have been the 60 s max_wait.
        assert!(start.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn callers_queued_behind_a_batch_go_together_and_each_gets_its_own_vector() {
        let (e, batches, go) = gated();
        let e = &e;
        std::thread::scope(|s| {
            let first = s.spawn(|| e.embed("a"));
            assert_eq!(batches.recv().unwrap(), ["a"]);
            let later: Vec<_> = ["bb", "ccc", "dddd"]
                .map(|t| s.spawn(move || (t, e.embed(t))))
                .into();
            wait_until(|| queued(e) == 3);
            go.send(()).unwrap();
            assert_eq!(first.join().unwrap().unwrap(), vector_of("a"));
            let mut second = batches.recv().unwrap();
            second.sort();
            assert_eq!(second, ["bb", "ccc", "dddd"], "one batch for all three");
            go.send(()).unwrap();
            for h in later {
                let (text, v) = h.join().unwrap();
                assert_eq!(
                    v.unwrap(),
                    vector_of(text),
                    "{text} got another caller's vector"
                );
            }
        });
        assert_eq!(
            e.counts(),
            BatchCounts {
                batches: 2,
                texts: 4
            }
        );
    }

    #[test]
    fn max_batch_splits_a_long_queue() {
        let (e, batches, go) = gated();
        let e = e.max_batch(2);
        let e = &e;
        std::thread::scope(|s| {
            let first = s.spawn(|| e.embed("a"));
            batches.recv().unwrap();
            let later: Vec<_> = ["b", "c", "d"].map(|t| s.spawn(move || e.embed(t))).into();
            wait_until(|| queued(e) == 3);
            for _ in 0..3 {
                go.send(()).unwrap();
            }
            first.join().unwrap().unwrap();
            let sizes: Vec<usize> = (0..2).map(|_| batches.recv().unwrap().len()).collect();
            assert_eq!(sizes, [2, 1]);
            go.send(()).unwrap();
            later
                .into_iter()
                .for_each(|h| assert!(h.join().unwrap().is_ok()));
        });
    }

    #[test]
    fn an_error_reaches_every_caller_of_its_batch_and_the_model_stays_usable() {
        let (e, batches, go) = gated();
        let e = &e;
        std::thread::scope(|s| {
            let first = s.spawn(|| e.embed("a"));
            batches.recv().unwrap();
            let b = s.spawn(|| e.embed("fail"));
            let c = s.spawn(|| e.embed("c"));
            wait_until(|| queued(e) == 2);
            go.send(()).unwrap();
            first.join().unwrap().unwrap();
            assert_eq!(batches.recv().unwrap().len(), 2);
            go.send(()).unwrap();
            for h in [b, c] {
                let err = h.join().unwrap().unwrap_err();
                assert!(err.to_string().contains("refused"), "{err}");
            }
        });
        go.send(()).unwrap();
        assert_eq!(e.embed("after").unwrap(), vector_of("after"));
    }

    #[test]
    fn a_panicking_model_fails_the_queued_callers_instead_of_stranding_them() {
        let (e, batches, go) = gated();
        std::thread::scope(|s| {
            let leader = s.spawn(|| e.embed("panic"));
            batches.recv().unwrap();
            let queued_caller = s.spawn(|| e.embed("b"));
            wait_until(|| queued(&e) == 1);
            // The queued caller is not in the panicking batch: it leads the next one.
            go.send(()).unwrap();
            assert!(leader.join().is_err(), "the leader's own call panics");
            assert_eq!(batches.recv().unwrap(), ["b"]);
            go.send(()).unwrap();
            assert_eq!(queued_caller.join().unwrap().unwrap(), vector_of("b"));
        });
    }

    #[test]
    fn callers_taken_into_a_panicking_batch_get_an_error() {
        let (e, batches, go) = gated();
        let e = &e;
        std::thread::scope(|s| {
            let first = s.spawn(|| e.embed("a"));
            batches.recv().unwrap();
            let p = s.spawn(|| e.embed("panic"));
            let other = s.spawn(|| e.embed("other"));
            wait_until(|| queued(e) == 2);
            go.send(()).unwrap();
            first.join().unwrap().unwrap();
            assert_eq!(batches.recv().unwrap().len(), 2);
            go.send(()).unwrap();
            // Whichever of the two led the batch panicked; the other got an error.
            let results = [p.join(), other.join()];
            assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
            let err = results
                .iter()
                .find_map(|r| r.as_ref().ok())
                .unwrap()
                .as_ref()
                .unwrap_err();
            assert!(err.to_string().contains("panicked"), "{err}");
        });
        go.send(()).unwrap();
        assert!(e.embed("after").is_ok(), "the model is free again");
    }

    /// Steady concurrent callers: with the gathering wait, batches hold all of them; without it,
    /// they split into cohorts that alternate.
    #[test]
    fn after_a_batch_of_several_the_next_leader_gathers_the_returning_callers() {
        struct Slow;
        impl Embedder for Slow {
            fn model_id(&self) -> &str {
                "slow"
            }
            fn dimension(&self) -> usize {
                1
            }
            fn embed(&self, text: &str) -> Result<Vec<f32>, BoxError> {
                Ok(self.embed_batch(&[text])?.remove(0))
            }
            fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BoxError> {
                std::thread::sleep(Duration::from_millis(3));
                Ok(texts.iter().map(|t| vec![t.len() as f32]).collect())
            }
        }
        let mean_batch = |wait: Duration| {
            let e = MicroBatcher::new(Slow).max_wait(wait);
            std::thread::scope(|s| {
                for t in 0..8 {
                    let e = &e;
                    s.spawn(move || {
                        for i in 0..40 {
                            let text = "x".repeat(1 + t + i);
                            assert_eq!(e.embed(&text).unwrap(), [text.len() as f32]);
                        }
                    });
                }
            });
            let c = e.counts();
            assert_eq!(c.texts, 8 * 40);
            c.texts as f64 / c.batches as f64
        };
        let gathered = mean_batch(Duration::from_millis(50));
        assert!(gathered >= 6.0, "mean batch {gathered} with gathering");
    }
}

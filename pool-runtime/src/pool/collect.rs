//! Reading a call's outcomes into input order: fail-fast (`map`), every outcome
//! (`map_outcomes`), and inputs that can fail to be read (`try_map`).

use std::cell::RefCell;
use std::rc::Rc;

use super::inputs::Input;
use super::stream::{Found, decode_outcome, undecodable};
use super::{MapUnordered, Options, Pool};
use crate::codec;
use crate::error::{Error, TaskError, TaskErrorKind};
use crate::master::RawOutcome;
use crate::task::Task;

/// Every outcome of a call, in input order.
pub type Outcomes<T> = Vec<Result<T, TaskError>>;

impl Pool {
    /// Runs `task` on every input and returns every outcome in input order, failures
    /// included: unlike [`Pool::map`], a failed task stops nothing.
    ///
    /// # Errors
    ///
    /// Only pool-level ones: with [`Options::journal`], [`Error::Journal`]; when a deadline
    /// stops the call before every input was sent, [`Error::Deadline`] (see [`Pool::map`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use pool_runtime::prelude::*;
    ///
    /// #[pool_task]
    /// fn invert(x: f64) -> Result<f64, String> {
    ///     if x == 0.0 { Err("cannot invert 0".into()) } else { Ok(1.0 / x) }
    /// }
    ///
    /// #[pool_main]
    /// fn main(pool: &mut Pool) -> Result<(), Error> {
    ///     let outcomes = pool.map_outcomes(invert, [1.0, 0.0, 4.0])?;
    ///     assert!(outcomes[1].is_err() && outcomes[2] == Ok(0.25));
    ///     Ok(())
    /// }
    /// ```
    pub fn map_outcomes<T, I>(&self, task: T, inputs: I) -> Result<Outcomes<T::Output>, Error>
    where
        T: Task,
        I: IntoIterator<Item: Input<T::Args>>,
    {
        self.map_outcomes_with(task, inputs, Options::new())
    }

    /// [`Pool::map_outcomes`] with explicit [`Options`].
    ///
    /// # Errors
    ///
    /// As [`Pool::map_outcomes`].
    pub fn map_outcomes_with<T, I>(
        &self,
        task: T,
        inputs: I,
        options: Options,
    ) -> Result<Outcomes<T::Output>, Error>
    where
        T: Task,
        I: IntoIterator<Item: Input<T::Args>>,
    {
        let inputs: Vec<I::Item> = inputs.into_iter().collect();
        let stream = self.map_unordered_with(task, inputs, options)?;
        let journaled = stream.source.resume.is_some();
        let outcomes = collect(stream, journaled)?;
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("pool: every index has an outcome"))
            .collect())
    }

    /// [`Pool::map`] over inputs that can fail to be read (`Result` items: files opened,
    /// lines parsed): stops at the first input that is an `Err` and returns it with its
    /// index, having sent nothing for it (the tasks already sent finish first).
    ///
    /// # Errors
    ///
    /// [`Error::Input`] for an input that could not be read, or what [`Pool::map`] returns;
    /// the one with the lower index when both happen.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use pool_runtime::prelude::*;
    ///
    /// #[pool_task]
    /// fn words(text: String) -> usize {
    ///     text.split_whitespace().count()
    /// }
    ///
    /// #[pool_main]
    /// fn main(pool: &mut Pool) -> Result<(), Error> {
    ///     let paths = ["a.txt", "b.txt"];
    ///     let counts = pool.try_map(words, paths.iter().map(std::fs::read_to_string))?;
    ///     println!("{counts:?}");
    ///     Ok(())
    /// }
    /// ```
    pub fn try_map<T, I, E>(&self, task: T, inputs: I) -> Result<Vec<T::Output>, Error>
    where
        T: Task,
        I: IntoIterator<Item = Result<T::Args, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.try_map_with(task, inputs, Options::new())
    }

    /// [`Pool::try_map`] with explicit [`Options`].
    ///
    /// # Errors
    ///
    /// As [`Pool::try_map`].
    pub fn try_map_with<T, I, E>(
        &self,
        task: T,
        inputs: I,
        options: Options,
    ) -> Result<Vec<T::Output>, Error>
    where
        T: Task,
        I: IntoIterator<Item = Result<T::Args, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let failed: Rc<RefCell<Option<Error>>> = Rc::default();
        let seen = Rc::clone(&failed);
        let mut index = 0usize;
        // Ends the inputs at the first one that could not be read: it is never sent.
        let inputs = inputs.into_iter().map_while(move |item| {
            let at = index;
            index += 1;
            match item {
                Ok(args) => Some(args),
                Err(e) => {
                    *seen.borrow_mut() = Some(Error::Input {
                        index: at,
                        source: e.into(),
                    });
                    None
                }
            }
        });
        let result = self.map_with(task, inputs, options);
        match (failed.take(), result) {
            (Some(Error::Input { index, source }), Err(Error::Task(e))) if e.index < index => {
                drop(source);
                Err(Error::Task(e))
            }
            (Some(input), _) => Err(input),
            (None, result) => result,
        }
    }
}

/// Reads a `map`'s stream into input order, fail-fast: after the first failure no further
/// inputs are sent, and the failure with the lowest index is returned. Only values are kept
/// (not a `Result` per item, which would be several times larger).
pub(super) fn collect_in_order<T, I>(
    mut stream: MapUnordered<'_, T, I>,
    expected: usize,
    journaled: bool,
) -> Result<Vec<T::Output>, Error>
where
    T: Task,
    I: Iterator<Item: Input<T::Args>>,
{
    // All of it is the pool's code: a signal meanwhile drains (see `signals`).
    let _in_pool = crate::signals::enter_pool();
    let mut values: Vec<Option<T::Output>> = Vec::with_capacity(expected);
    let mut first_error: Option<TaskError> = None;
    // Each value goes straight to its place; only a failure comes back out of the step.
    let mut store = |index: usize, value: T::Output| {
        if values.len() <= index {
            values.resize_with(index + 1, || None);
        }
        values[index] = Some(value);
    };
    while let Some(failure) = stream.advance(|found| {
        let (index, outcome) = match found {
            Found::Arrived(origin, RawOutcome::Value(bytes, part)) => {
                match codec::decode_parts::<T::Output>(bytes, part) {
                    Ok(value) => {
                        store(usize::try_from(origin.index).unwrap_or(usize::MAX), value);
                        return None;
                    }
                    Err(e) => return Some(Box::new(undecodable(origin, e))),
                }
            }
            Found::Arrived(origin, raw) => decode_outcome(origin, raw),
            Found::Reused(index, outcome) => (index, outcome),
        };
        match outcome {
            Ok(value) => {
                store(index, value);
                None
            }
            // Boxed: the step's result stays one word wide on the path every value takes.
            Err(e) => Some(Box::new(e)),
        }
    }) {
        // The deadline's outcome: the stream ends after it (`deadline_error`).
        if let Some(e) = failure.filter(|e| e.kind != TaskErrorKind::NotStarted) {
            stream.stop_sending();
            if first_error.as_ref().is_none_or(|f| e.index < f.index) {
                first_error = Some(*e);
            }
        }
        if journaled && stream.pool.master().journal_failed(stream.job) {
            stream.stop_sending();
        }
    }
    if let Some(e) = stream.journal_error.take() {
        return Err(e);
    }
    if let Some(e) = first_error {
        return Err(e.into());
    }
    if let Some(e) = stream.deadline_error.take() {
        return Err(e);
    }
    Ok(values
        .into_iter()
        .map(|v| v.expect("pool: every index has a result"))
        .collect())
}

/// Outcomes by index, `None` for an input never sent.
type Sparse<T> = Vec<Option<Result<T, TaskError>>>;

/// Every outcome of `stream` by index; a journal's failure ends it (`None`: never sent).
fn collect<T, I>(
    mut stream: MapUnordered<'_, T, I>,
    journaled: bool,
) -> Result<Sparse<T::Output>, Error>
where
    T: Task,
    I: Iterator<Item: Input<T::Args>>,
{
    let _in_pool = crate::signals::enter_pool();
    let mut outcomes: Sparse<T::Output> = Vec::new();
    while let Some((index, outcome)) = stream.next() {
        if matches!(&outcome, Err(e) if e.kind == TaskErrorKind::NotStarted) {
            continue;
        }
        if outcomes.len() <= index {
            outcomes.resize_with(index + 1, || None);
        }
        outcomes[index] = Some(outcome);
        if journaled && stream.pool.master().journal_failed(stream.job) {
            stream.stop_sending();
        }
    }
    if let Some(e) = stream.journal_error.take() {
        return Err(e);
    }
    if let Some(e) = stream.deadline_error.take() {
        return Err(e);
    }
    Ok(outcomes)
}

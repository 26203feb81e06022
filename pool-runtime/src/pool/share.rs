//! [`Pool::share`]: a value sent to every worker once.

use std::any::Any;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Pool;
use crate::codec;
use crate::error::Error;
use crate::shared::{self, Shared};

impl Pool {
    /// Sends `value` to every worker once and returns a [`Shared`] handle: put clones of it
    /// in a task's arguments, and each task gets the value from its worker's copy, while
    /// only a small id travels with the task.
    ///
    /// In one process (threads) nothing is copied: the workers use the `Arc` that the handle
    /// holds. Under MPI (and in spawn mode) the value is encoded once and broadcast with
    /// `MPI_Bcast` (its bytes leave the master O(log W) times for W workers, not W times);
    /// the call first lets the chunks in flight finish (their results wait for their
    /// calls), so that every worker is ready to receive. A worker decodes the value the first
    /// time a task needs it. Several values may be shared at once; each is freed on the
    /// workers after its last handle on the master is dropped (see [`Shared`]).
    ///
    /// # Errors
    ///
    /// [`Error::Share`] when the value does not encode.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use pool_runtime::prelude::*;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Calibration {
    ///     gain: Vec<f64>, // 200 MB of it
    /// }
    ///
    /// #[pool_task]
    /// fn correct(table: Shared<Calibration>, run: Vec<f64>) -> Vec<f64> {
    ///     run.iter().zip(&table.gain).map(|(x, g)| x * g).collect()
    /// }
    ///
    /// #[pool_main]
    /// fn main(pool: &mut Pool) -> Result<(), Error> {
    ///     let table = pool.share(Calibration { gain: vec![1.5; 1000] })?; // sent once
    ///     let runs = (0..100).map(|i| (table.clone(), vec![i as f64; 1000]));
    ///     let corrected = pool.map(correct, runs)?; // each task carries an id
    ///     println!("{}", corrected.len());
    ///     Ok(())
    /// }
    /// ```
    ///
    /// See `examples/shared_table.rs`.
    pub fn share<T>(&self, value: T) -> Result<Shared<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let value = Arc::new(value);
        let id = shared::next_id();
        let mut master = self.master();
        let any: Arc<dyn Any + Send + Sync> = Arc::clone(&value) as _;
        master
            .share(id, any, || {
                let mut bytes = Vec::new();
                codec::encode_into(&*value, &mut bytes)?;
                Ok(bytes)
            })
            .map_err(|message| Error::Share { message })?;
        Ok(Shared::owned(id, value, master.free_queue()))
    }
}

//! [`Handle`]: one task sent with [`Pool::submit`](crate::Pool::submit).

use std::fmt;
use std::marker::PhantomData;

use super::Pool;
use super::stream::decode_outcome;
use crate::error::TaskError;
use crate::master::ChunkPlan;
use crate::task::Task;

/// A task sent with [`Pool::submit`](crate::Pool::submit) (see there for an example); [`Handle::wait`] returns its
/// result.
///
/// Dropping a handle without waiting discards the result.
#[must_use = "a task's result is lost unless you wait for it"]
pub struct Handle<'p, T: Task> {
    pub(super) pool: &'p Pool,
    pub(super) job: u32,
    pub(super) waited: bool,
    pub(super) task: PhantomData<T>,
}

impl<T: Task> fmt::Debug for Handle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("task", &T::NAME)
            .finish_non_exhaustive()
    }
}

impl<T: Task> Handle<'_, T> {
    /// Waits for the task to finish and returns its value.
    ///
    /// # Errors
    ///
    /// The task's failure: it returned `Err`, panicked, or its data could not cross.
    pub fn wait(mut self) -> Result<T::Output, TaskError> {
        self.waited = true;
        let mut master = self.pool.master();
        master.receive_available();
        loop {
            master.dispatch(None, ChunkPlan::default());
            if let Some((_, outcome)) = master.next_outcome(self.job, decode_outcome::<T::Output>) {
                master.close_job(self.job);
                return outcome;
            }
            master.receive_one();
        }
    }
}

impl<T: Task> Drop for Handle<'_, T> {
    fn drop(&mut self) {
        if !self.waited {
            if let Ok(mut master) = self.pool.master.try_borrow_mut() {
                master.close_job(self.job);
            }
        }
    }
}

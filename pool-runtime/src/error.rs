//! Errors: [`Error`] for the pool as a whole, [`TaskError`] for one task.

use std::fmt;

/// A failure of the pool, as opposed to one task.
///
/// The `Display` texts are stable and tested. `Debug` prints the same text, so a `main` that
/// returns `Result<(), Error>` ends with a readable `Error: ...` line.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A task failed; `map` returns the failure with the lowest index, after letting the tasks
    /// already running finish.
    #[error(transparent)]
    Task(Box<TaskError>),
    /// MPI was initialized before the pool started.
    #[error(
        "MPI is already initialized: start the pool once, through #[pool_main] or pool_runtime::run"
    )]
    AlreadyInitialized,
    /// Several `#[pool_task]`s claim the same name.
    #[error(
        "duplicate pool task names: {}; give each task a unique name with #[pool_task(name = \"...\")]",
        .0.join(", ")
    )]
    DuplicateTasks(Vec<String>),
    /// A worker's task registry differs from the master's: the ranks are not running the same
    /// program.
    #[error(
        "rank {rank} on {host} has different pool tasks than the master (rank 0): {detail}; \
         run the same binary on every rank"
    )]
    RegistryMismatch {
        /// The worker's rank.
        rank: usize,
        /// The worker's host.
        host: String,
        /// Which names one side has and the other lacks.
        detail: String,
    },
    /// A resume journal could not be used: it belongs to another run, or reading or writing
    /// it failed. Results written to it before the failure stay in it.
    #[error("journal {}: {message}", path.display())]
    Journal {
        /// The journal's path.
        path: std::path::PathBuf,
        /// What went wrong, and what to do.
        message: String,
    },
    /// An input of [`Pool::try_map`](crate::Pool::try_map) could not be read: nothing was
    /// sent for it or after it.
    #[error("input {index} could not be read: {source}")]
    Input {
        /// Its position in the input sequence.
        index: usize,
        /// Why: the input iterator's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// [`Pool::share`](crate::Pool::share) could not send the value: it does not encode, or
    /// a worker is stuck in an item past its [timeout](crate::Options::timeout).
    #[error("cannot share the value: {message}")]
    Share {
        /// Why.
        message: String,
    },
    /// A deadline ([`Options::deadline`](crate::Options::deadline), `POOL_DEADLINE`, or the
    /// end time of the Slurm job) stopped a call: the inputs from `first` on were not started,
    /// because the task times measured so far said they would not finish in time. The
    /// results that finished are in the call's journal, if it has one: run again with it to
    /// finish the rest.
    #[error(
        "deadline reached ({reason}): {}, as the measured task times said they would not \
         finish in time; {}",
        not_started_text(*.not_started, *.first),
        rerun_text(.journal.as_deref())
    )]
    Deadline {
        /// What the deadline was, and where it came from.
        reason: String,
        /// The first input not started.
        first: u64,
        /// How many inputs were not started, when the input iterator says how many it had.
        not_started: Option<u64>,
        /// The call's journal, which holds the results that finished.
        journal: Option<std::path::PathBuf>,
    },
    /// An environment variable of the pool's has a value it cannot use; the message names it
    /// and says what it takes.
    #[error("{message}")]
    Environment {
        /// The variable.
        variable: &'static str,
        /// What is wrong, and what to write instead.
        message: String,
    },
    /// A rank sent something that does not follow the pool protocol.
    #[error("protocol error from rank {rank}: {message}")]
    Protocol {
        /// The rank that sent the frame.
        rank: usize,
        /// What was wrong with it.
        message: String,
    },
}

fn not_started_text(count: Option<u64>, first: u64) -> String {
    match count {
        Some(1) => format!("1 input (input {first}) was not started"),
        Some(n) => format!("{n} inputs (from input {first} on) were not started"),
        None => format!("the inputs from input {first} on were not started"),
    }
}

fn rerun_text(journal: Option<&std::path::Path>) -> String {
    match journal {
        Some(path) => format!(
            "the results that finished are in the journal {}: run again with it to finish the \
             rest",
            path.display()
        ),
        None => "without a journal (Options::journal) a rerun starts from the beginning".to_owned(),
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<TaskError> for Error {
    fn from(e: TaskError) -> Self {
        Error::Task(Box::new(e))
    }
}

/// How a task failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskErrorKind {
    /// The task returned `Err`.
    Failed,
    /// The task panicked.
    Panicked,
    /// The arguments could not be encoded on the master or decoded on the worker.
    BadInput,
    /// The result could not be encoded on the worker or decoded on the master.
    BadOutput,
    /// The worker refused the task: it does not know it, or the frame was malformed.
    Rejected,
    /// The task's [`WorkerState`](crate::WorkerState) could not be built on that worker: its
    /// `init` returned `Err` or panicked (the message is its error). Every item of that task
    /// on that worker fails so; `init` is not run again there.
    StateInit,
    /// The item ran longer than its [`Options::timeout`](crate::Options::timeout) (the
    /// message names the limit and the worker, which gets no more tasks), or was not run
    /// because every worker was stuck so.
    TimedOut,
    /// The item was never sent: a deadline came first ([`Error::Deadline`] says which). A
    /// [`Pool::map_unordered`](crate::Pool::map_unordered) stream yields one such error, for
    /// the first input not started, and ends.
    NotStarted,
}

/// One task that produced no value: which item, where it ran, and why.
///
/// # Examples
///
/// ```no_run
/// use pool_runtime::prelude::*;
/// use pool_runtime::TaskErrorKind;
///
/// #[pool_task]
/// fn invert(x: f64) -> f64 {
///     assert!(x != 0.0, "cannot invert 0");
///     1.0 / x
/// }
///
/// #[pool_main]
/// fn main(pool: &mut Pool) -> Result<(), Error> {
///     for (_, outcome) in pool.map_unordered(invert, [1.0, 0.0, 4.0]) {
///         if let Err(e) = outcome {
///             assert_eq!((e.index, e.kind), (1, TaskErrorKind::Panicked));
///             eprintln!("{e}"); // ... panicked on item 1 (rank 2 on node7): cannot invert 0 at src/main.rs:6:5
///         }
///     }
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskError {
    /// Position of the item in the input sequence (0 for `submit`).
    pub index: usize,
    /// The task's name, `module::path::function`.
    pub task: &'static str,
    /// The MPI rank that ran it (0 when tasks run in-process).
    pub rank: usize,
    /// The host that ran it.
    pub host: String,
    /// How it failed.
    pub kind: TaskErrorKind,
    /// The error's text, the panic message with its location, or what went wrong in transit.
    pub message: String,
    /// How many times the item ran ([`Options::retries`](crate::Options::retries)); 1
    /// without retries.
    pub attempts: u32,
    /// The earlier attempts' messages, oldest first (empty after one attempt).
    pub earlier: Vec<String>,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.kind {
            TaskErrorKind::Failed => "failed",
            TaskErrorKind::Panicked => "panicked",
            TaskErrorKind::BadInput => "got unusable arguments",
            TaskErrorKind::BadOutput => "gave an unusable result",
            TaskErrorKind::Rejected => "was rejected",
            TaskErrorKind::StateInit => "could not build its worker state",
            TaskErrorKind::TimedOut => "timed out",
            TaskErrorKind::NotStarted => "was not started",
        };
        write!(
            f,
            "task {} {how} on item {} (rank {} on {}): {}",
            self.task, self.index, self.rank, self.host, self.message
        )?;
        if self.attempts > 1 {
            write!(f, " (attempt {} of {}", self.attempts, self.attempts)?;
            if !self.earlier.is_empty() {
                write!(f, "; earlier: {}", self.earlier.join("; "))?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl std::error::Error for TaskError {}

/// Why one task produced no value, as seen on the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskFailure {
    /// The task returned `Err`; its `Display` text.
    Failed(String),
    /// The task panicked; the panic message and location.
    Panicked(String),
    /// The arguments could not be decoded.
    BadInput(String),
    /// The return value could not be encoded.
    BadOutput(String),
    /// The task's worker state could not be built.
    StateInit(String),
}

impl TaskFailure {
    pub(crate) fn message(&self) -> &str {
        match self {
            TaskFailure::Failed(m)
            | TaskFailure::Panicked(m)
            | TaskFailure::BadInput(m)
            | TaskFailure::BadOutput(m)
            | TaskFailure::StateInit(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task_error() -> TaskError {
        TaskError {
            index: 17,
            task: "app::analyze",
            rank: 3,
            host: "node12".into(),
            kind: TaskErrorKind::Panicked,
            message: "boom at src/main.rs:4:5".into(),
            attempts: 1,
            earlier: Vec::new(),
        }
    }

    #[test]
    fn attempts_are_told_after_several() {
        let mut e = task_error();
        e.attempts = 3;
        e.earlier = vec!["first".into(), "second".into()];
        assert_eq!(
            e.to_string(),
            "task app::analyze panicked on item 17 (rank 3 on node12): boom at src/main.rs:4:5 \
             (attempt 3 of 3; earlier: first; second)"
        );
    }

    #[test]
    fn texts_are_stable() {
        assert_eq!(
            task_error().to_string(),
            "task app::analyze panicked on item 17 (rank 3 on node12): boom at src/main.rs:4:5"
        );
        assert_eq!(
            Error::from(task_error()).to_string(),
            "task app::analyze panicked on item 17 (rank 3 on node12): boom at src/main.rs:4:5"
        );
        assert_eq!(
            Error::DuplicateTasks(vec!["a::f".into(), "b::g".into()]).to_string(),
            "duplicate pool task names: a::f, b::g; give each task a unique name with \
             #[pool_task(name = \"...\")]"
        );
        assert_eq!(
            Error::RegistryMismatch {
                rank: 2,
                host: "n2".into(),
                detail: "rank 2 lacks a::f".into()
            }
            .to_string(),
            "rank 2 on n2 has different pool tasks than the master (rank 0): rank 2 lacks a::f; \
             run the same binary on every rank"
        );
        assert_eq!(
            Error::Protocol {
                rank: 1,
                message: "bad".into()
            }
            .to_string(),
            "protocol error from rank 1: bad"
        );
        assert_eq!(
            Error::Deadline {
                reason: "POOL_DEADLINE=2h".into(),
                first: 766,
                not_started: Some(234),
                journal: Some("run.journal".into()),
            }
            .to_string(),
            "deadline reached (POOL_DEADLINE=2h): 234 inputs (from input 766 on) were not \
             started, as the measured task times said they would not finish in time; the \
             results that finished are in the journal run.journal: run again with it to finish \
             the rest"
        );
        assert_eq!(
            Error::Deadline {
                reason: "Options::deadline".into(),
                first: 9,
                not_started: None,
                journal: None,
            }
            .to_string(),
            "deadline reached (Options::deadline): the inputs from input 9 on were not started, \
             as the measured task times said they would not finish in time; without a journal \
             (Options::journal) a rerun starts from the beginning"
        );
        let mut e = task_error();
        e.kind = TaskErrorKind::StateInit;
        e.message = "no GPU".into();
        assert_eq!(
            e.to_string(),
            "task app::analyze could not build its worker state on item 17 (rank 3 on node12): \
             no GPU"
        );
    }
}

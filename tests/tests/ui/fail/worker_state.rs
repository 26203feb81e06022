use pool_runtime::prelude::*;

struct Plan;

// Not a `WorkerState`: the error is at the type.
#[pool_task]
fn spectrum(plan: &mut Plan, x: u64) -> u64 {
    let _ = plan;
    x
}

struct Fft;

impl WorkerState for Fft {
    fn init(_: &WorkerContext) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Fft)
    }
}

// Only the first parameter may be a worker state; every other reference is refused.
#[pool_task]
fn two_states(fft: &mut Fft, other: &mut Fft) -> u64 {
    let _ = (fft, other);
    0
}

#[pool_task]
fn state_later(x: u64, fft: &Fft) -> u64 {
    let _ = fft;
    x
}

fn main() {}

// A task whose first parameter is the worker's state: built once per worker, not sent.
use pool_runtime::prelude::*;

struct Fft {
    size: usize,
}

#[pool_task]
fn spectrum(fft: &mut Fft, samples: Vec<f64>, scale: f64) -> Vec<f64> {
    samples.iter().take(fft.size).map(|x| x * scale).collect()
}

#[pool_task]
fn size(fft: &Fft) -> usize {
    fft.size
}

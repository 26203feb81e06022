use pool_runtime::prelude::*;

struct Run {
    samples: Vec<f64>,
}

#[pool_task]
fn mean(run: Run) -> f64 {
    run.samples.iter().sum::<f64>() / run.samples.len() as f64
}

#[pool_task]
fn scaled(factor: f64, run: Run) -> f64 {
    factor * mean(run)
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    let runs = vec![Run { samples: vec![1.0] }];
    let _ = pool.map(mean, runs)?;
    Ok(())
}

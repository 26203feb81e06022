use pool_runtime::prelude::*;
/// Runs on every rank before the pool starts.
fn setup() {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
}
fn main() {
    fn __pool_main(pool: &mut Pool) -> Result<(), Box<dyn std::error::Error>> {
        let squares = pool.map(square, 0..10)?;
        println!("{squares:?}");
        Ok(())
    }
    ::pool_runtime::__private::launch_with_init(setup)
        .workers(2)
        .run::<
            _,
            Result<(), Box<dyn std::error::Error>>,
        >(|__pool: &mut ::pool_runtime::__private::Pool| __pool_main(__pool))
}

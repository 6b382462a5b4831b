//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!` embeds
//! `migrations/postgres/` at compile time, and cargo does not otherwise know to look
//! there, so a new migration would be missing from the next build.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations/postgres");
}

// embed_migrations! uses include_str!, which does not notice a new migration
// directory: rebuild whenever migrations/ changes.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

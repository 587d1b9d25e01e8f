//! Tables, SQL and parquet (feature `sql`): every stash is an Arrow table that DataFusion
//! queries, that joins other stashes, and that exports to parquet and loads back.
//!
//! `cargo run --features sql --example sql`

use hashstash::table::sql::{pretty, sql_over};
use hashstash::{EngineKind, Stash};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Pet {
    kind: String,
    age: u32,
    vaccinated: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pets = Stash::builder()
        .dbname("examples_sql_pets")
        .clear(true)
        .open()?;
    let owners = Stash::builder()
        .dbname("examples_sql_owners")
        .clear(true)
        .open()?;
    for (name, kind, age) in [("tom", "cat", 3), ("rex", "dog", 5), ("kit", "cat", 1)] {
        let pet = Pet {
            kind: kind.into(),
            age,
            vaccinated: age > 2,
        };
        pets.set(name, &pet)?;
    }
    owners.set("ana", &serde_json::json!({"pet": "tom", "city": "Lisbon"}))?;
    owners.set("ben", &serde_json::json!({"pet": "rex", "city": "Oslo"}))?;

    // One stash: its values' fields are columns, its keys `_key`.
    let by_kind = pets.sql(
        "SELECT kind, count(*) AS n, avg(age) AS mean_age FROM stash GROUP BY kind ORDER BY kind",
    )?;
    println!("{}", pretty(&by_kind)?);

    // Several stashes, joined.
    let joined = sql_over(
        &[("pets", &pets), ("owners", &owners)],
        "SELECT owners._key AS owner, city, pets._key AS pet, kind FROM owners JOIN pets ON owners.pet = pets._key ORDER BY owner",
    )?;
    println!("{}", pretty(&joined)?);

    // A parquet snapshot, loaded back into another engine with the values it came from.
    let file = std::env::temp_dir().join("examples_sql_pets.parquet");
    let rows = pets.to_parquet(&file)?;
    let copy = Stash::builder()
        .dbname("examples_sql_copy")
        .engine(EngineKind::Pairtree)
        .clear(true)
        .open()?;
    copy.load_parquet(&file)?;
    let tom: Option<Pet> = copy.get("tom")?;
    println!("{rows} rows to parquet; loaded back: tom = {tom:?}");
    assert_eq!(tom, pets.get("tom")?);
    std::fs::remove_file(&file)?;
    Ok(())
}

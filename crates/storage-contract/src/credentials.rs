//! C1-C5: credentials.

use std::collections::BTreeSet;

use serde_json::json;
use storage_ports::{CredentialKey, ErrorKind, Secret};

use crate::check::{expect_kind, id, Ctx, Failure, TestResult};
use crate::{ensure, ensure_eq};

const SENTINEL: &str = "sk-SENTINEL-7f3a9c-never-print-me";

/// C1: set, get, overwrite, delete.
pub async fn c1_set_get_overwrite_delete(ctx: Ctx) -> TestResult {
    let k: CredentialKey = id("api-key")?;
    ctx.set
        .credentials
        .set(&ctx.tenant, &k, &Secret::new("one".into()))
        .await?;
    ensure_eq!(
        ctx.set.credentials.get(&ctx.tenant, &k).await?.expose(),
        "one",
        "value"
    );
    ctx.set
        .credentials
        .set(&ctx.tenant, &k, &Secret::new("two".into()))
        .await?;
    ensure_eq!(
        ctx.set.credentials.get(&ctx.tenant, &k).await?.expose(),
        "two",
        "overwritten value"
    );
    ctx.set.credentials.delete(&ctx.tenant, &k).await?;
    expect_kind(
        ctx.set.credentials.get(&ctx.tenant, &k).await,
        ErrorKind::NotFound,
        "get after delete",
    )?;
    Ok(())
}

/// C1: get or delete of a missing key is not-found.
pub async fn c1_missing_key_is_not_found(ctx: Ctx) -> TestResult {
    let k: CredentialKey = id("nothing")?;
    expect_kind(
        ctx.set.credentials.get(&ctx.tenant, &k).await,
        ErrorKind::NotFound,
        "get",
    )?;
    expect_kind(
        ctx.set.credentials.delete(&ctx.tenant, &k).await,
        ErrorKind::NotFound,
        "delete",
    )?;
    Ok(())
}

/// C2: after concurrent sets and deletes, list is exactly the keys that exist.
pub async fn c2_list_is_exact_after_concurrent_sets_and_deletes(ctx: Ctx) -> TestResult {
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (set, t) = (ctx.set.clone(), ctx.tenant.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let k: CredentialKey = id(&format!("k-{w}-{i}"))?;
                set.credentials
                    .set(&t, &k, &Secret::new(format!("v{i}")))
                    .await?;
                if i % 3 == 0 {
                    set.credentials.delete(&t, &k).await?;
                }
            }
            Ok::<(), Failure>(())
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| Failure(format!("task panicked: {e}")))??;
    }
    let want: BTreeSet<String> = (0..8)
        .flat_map(|w| {
            (0..25)
                .filter(|i| i % 3 != 0)
                .map(move |i| format!("k-{w}-{i}"))
        })
        .collect();
    let listed: BTreeSet<String> = ctx
        .set
        .credentials
        .list(&ctx.tenant)
        .await?
        .into_iter()
        .map(String::from)
        .collect();
    ensure_eq!(listed, want, "listed keys");
    for k in &want {
        ctx.set.credentials.get(&ctx.tenant, &id(k)?).await?;
    }
    Ok(())
}

/// C3: structured credentials round-trip.
pub async fn c3_structured_credentials_round_trip(ctx: Ctx) -> TestResult {
    let k: CredentialKey = id("oauth")?;
    let value = json!({"client_id": "abc", "client_secret": "s3cr3t", "scopes": ["a", "b"], "expires": 3600});
    ctx.set
        .credentials
        .set(&ctx.tenant, &k, &Secret::from_json(&value)?)
        .await?;
    let back: serde_json::Value = ctx.set.credentials.get(&ctx.tenant, &k).await?.to_json()?;
    ensure_eq!(back, value, "structured value");
    Ok(())
}

/// C4: a secret never shows in Debug, Display or error messages.
pub async fn c4_secret_never_in_debug_display_or_errors(ctx: Ctx) -> TestResult {
    let k: CredentialKey = id("sentinel")?;
    let s = Secret::new(SENTINEL.into());
    ensure!(
        !format!("{s:?} {s}").contains(SENTINEL),
        "Debug/Display shows the secret"
    );
    ctx.set.credentials.set(&ctx.tenant, &k, &s).await?;
    let got = ctx.set.credentials.get(&ctx.tenant, &k).await?;
    ensure!(
        !format!("{got:?}").contains(SENTINEL),
        "Debug of a read secret shows it"
    );
    let e = match got.to_json::<u64>() {
        Err(e) => e,
        Ok(_) => return Err(Failure("the sentinel parsed as a number".into())),
    };
    ensure!(
        !e.to_string().contains(SENTINEL) && !format!("{e:?}").contains(SENTINEL),
        "an error message shows the secret"
    );
    Ok(())
}

/// C5: tenants never see each other's credentials.
pub async fn c5_tenants_never_see_each_other(ctx: Ctx) -> TestResult {
    let k: CredentialKey = id("shared")?;
    ctx.set
        .credentials
        .set(&ctx.tenant, &k, &Secret::new("a".into()))
        .await?;
    expect_kind(
        ctx.set.credentials.get(&ctx.other, &k).await,
        ErrorKind::NotFound,
        "other tenant's get",
    )?;
    ensure!(
        ctx.set.credentials.list(&ctx.other).await?.is_empty(),
        "other tenant lists A's key"
    );
    ctx.set
        .credentials
        .set(&ctx.other, &k, &Secret::new("b".into()))
        .await?;
    ensure_eq!(
        ctx.set.credentials.get(&ctx.tenant, &k).await?.expose(),
        "a",
        "A's value"
    );
    Ok(())
}

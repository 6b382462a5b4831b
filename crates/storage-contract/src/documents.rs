//! D1, D2: documents.

use serde_json::json;
use storage_ports::{CollectionName, DocumentFilter, DocumentId, ErrorKind, PageRequest};

use crate::check::{expect_kind, id, Ctx, TestResult};
use crate::{ensure, ensure_eq};

/// D1: create (given or generated id), get, replace, delete.
pub async fn d1_create_get_replace_delete(ctx: Ctx) -> TestResult {
    let c: CollectionName = id("projects")?;
    let given: DocumentId = id("p-1")?;
    let a = ctx
        .set
        .documents
        .create(&ctx.tenant, &c, Some(given.clone()), json!({"name": "a"}))
        .await?;
    ensure_eq!((a.id.clone(), a.revision), (given.clone(), 1), "created");
    let g = ctx
        .set
        .documents
        .create(&ctx.tenant, &c, None, json!({"name": "g"}))
        .await?;
    ensure!(g.id != given, "generated id collides");
    expect_kind(
        ctx.set
            .documents
            .create(&ctx.tenant, &c, Some(given.clone()), json!({}))
            .await,
        ErrorKind::AlreadyExists,
        "create of an existing id",
    )?;
    let r = ctx
        .set
        .documents
        .replace(&ctx.tenant, &c, &given, 1, json!({"name": "a2"}))
        .await?;
    ensure_eq!(
        (r.revision, r.body.clone()),
        (2, json!({"name": "a2"})),
        "replaced"
    );
    ensure_eq!(
        ctx.set.documents.get(&ctx.tenant, &c, &given).await?,
        r,
        "get"
    );
    ctx.set
        .documents
        .delete(&ctx.tenant, &c, &given, Some(2))
        .await?;
    expect_kind(
        ctx.set.documents.get(&ctx.tenant, &c, &given).await,
        ErrorKind::NotFound,
        "get after delete",
    )?;
    expect_kind(
        ctx.set
            .documents
            .delete(&ctx.tenant, &c, &given, None)
            .await,
        ErrorKind::NotFound,
        "delete of nothing",
    )?;
    Ok(())
}

/// D1: a stale revision is `PreconditionFailed` and changes nothing.
pub async fn d1_stale_revision_fails_the_precondition(ctx: Ctx) -> TestResult {
    let c: CollectionName = id("cas")?;
    let d = ctx
        .set
        .documents
        .create(&ctx.tenant, &c, None, json!({"v": 1}))
        .await?;
    ctx.set
        .documents
        .replace(&ctx.tenant, &c, &d.id, 1, json!({"v": 2}))
        .await?;
    expect_kind(
        ctx.set
            .documents
            .replace(&ctx.tenant, &c, &d.id, 1, json!({"v": 3}))
            .await,
        ErrorKind::PreconditionFailed,
        "replace at stale revision",
    )?;
    expect_kind(
        ctx.set
            .documents
            .delete(&ctx.tenant, &c, &d.id, Some(1))
            .await,
        ErrorKind::PreconditionFailed,
        "delete at stale revision",
    )?;
    ensure_eq!(
        ctx.set.documents.get(&ctx.tenant, &c, &d.id).await?.body,
        json!({"v": 2}),
        "body"
    );
    Ok(())
}

/// D1: a listing is in byte order of ids, whatever order they were created in and
/// whatever the backend's collation: `-` < `.` < digits < upper case < `_` < lower case.
pub async fn d1_listing_is_in_byte_order_of_ids(ctx: Ctx) -> TestResult {
    let c: CollectionName = id("order")?;
    let ids = ["b", "_x", "B", "a.1", "a-1", "A", "0", "a_1", "Z9", "a"];
    for d in ids {
        let doc_id: DocumentId = id(d)?;
        ctx.set
            .documents
            .create(&ctx.tenant, &c, Some(doc_id), json!({}))
            .await?;
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(3);
    loop {
        let p = ctx
            .set
            .documents
            .list(&ctx.tenant, &c, &DocumentFilter::all(), page)
            .await?;
        seen.extend(p.items.into_iter().map(|d| d.id.to_string()));
        match p.next {
            Some(n) => page = PageRequest::after(3, n),
            None => break,
        }
    }
    let mut want: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    ensure_eq!(seen, want, "listing order");
    Ok(())
}

/// D1: listing pages by id with equality filters on top-level fields.
pub async fn d1_list_pages_with_equality_filters(ctx: Ctx) -> TestResult {
    let c: CollectionName = id("items")?;
    for i in 0..25 {
        let doc_id: DocumentId = id(&format!("item-{i:02}"))?;
        ctx.set
            .documents
            .create(
                &ctx.tenant,
                &c,
                Some(doc_id),
                json!({"color": if i % 2 == 0 { "red" } else { "blue" }, "n": i}),
            )
            .await?;
    }
    let filter = DocumentFilter::all().eq("color", json!("red"));
    let mut seen = Vec::new();
    let mut page = PageRequest::first(4);
    loop {
        let p = ctx
            .set
            .documents
            .list(&ctx.tenant, &c, &filter, page)
            .await?;
        seen.extend(p.items.into_iter().map(|d| d.id.to_string()));
        match p.next {
            Some(n) => page = PageRequest::after(4, n),
            None => break,
        }
    }
    let want: Vec<String> = (0..25)
        .filter(|i| i % 2 == 0)
        .map(|i| format!("item-{i:02}"))
        .collect();
    ensure_eq!(seen, want, "filtered listing");
    let two = ctx
        .set
        .documents
        .list(
            &ctx.tenant,
            &c,
            &DocumentFilter::all()
                .eq("color", json!("blue"))
                .eq("n", json!(3)),
            PageRequest::first(10),
        )
        .await?;
    ensure_eq!(two.items.len(), 1, "two filters");
    Ok(())
}

/// D2: tenants never see each other's documents.
pub async fn d2_tenants_never_see_each_other(ctx: Ctx) -> TestResult {
    let c: CollectionName = id("iso")?;
    let d_id: DocumentId = id("same")?;
    ctx.set
        .documents
        .create(&ctx.tenant, &c, Some(d_id.clone()), json!({"t": "a"}))
        .await?;
    expect_kind(
        ctx.set.documents.get(&ctx.other, &c, &d_id).await,
        ErrorKind::NotFound,
        "other tenant's get",
    )?;
    ensure!(
        ctx.set
            .documents
            .list(
                &ctx.other,
                &c,
                &DocumentFilter::all(),
                PageRequest::first(10)
            )
            .await?
            .items
            .is_empty(),
        "other tenant lists"
    );
    ensure!(
        ctx.set.documents.collections(&ctx.other).await?.is_empty(),
        "other tenant's collections"
    );
    ctx.set
        .documents
        .create(&ctx.other, &c, Some(d_id.clone()), json!({"t": "b"}))
        .await?;
    ensure_eq!(
        ctx.set.documents.get(&ctx.tenant, &c, &d_id).await?.body,
        json!({"t": "a"}),
        "A's document"
    );
    Ok(())
}

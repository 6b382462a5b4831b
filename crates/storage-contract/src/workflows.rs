//! W1-W9: workflow definitions.

use std::collections::BTreeSet;

use serde_json::json;
use storage_ports::{ContentHash, ErrorKind, NewWorkflowVersion, PageRequest, WorkflowId};

use crate::check::{expect_kind, id, Ctx, TestResult};
use crate::{ensure, ensure_eq};

fn put(wf: &WorkflowId, n: i64) -> NewWorkflowVersion {
    NewWorkflowVersion::next(wf.clone(), json!({"nodes": [{"id": "a", "n": n}]}))
}

/// W1: what is stored reads back with its metadata and canonical hash.
pub async fn w1_put_get_returns_definition_meta_and_hash(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("w1")?;
    let def = json!({"b": 1, "a": [1, 2, {"z": null}]});
    let stored = ctx
        .set
        .workflows
        .put(
            &ctx.tenant,
            NewWorkflowVersion::next(wf.clone(), def.clone()).with_author("ana"),
        )
        .await?;
    let back = ctx
        .set
        .workflows
        .get(&ctx.tenant, &wf, stored.meta.version)
        .await?;
    ensure_eq!(back, stored, "read back");
    ensure_eq!(
        back.meta.content_hash,
        ContentHash::of(&def),
        "content hash"
    );
    ensure_eq!(back.meta.author.as_deref(), Some("ana"), "author");
    Ok(())
}

/// W2: other content at an existing version is `PreconditionFailed`.
pub async fn w2_other_content_at_existing_version_fails_the_precondition(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("w2")?;
    ctx.set
        .workflows
        .put(&ctx.tenant, put(&wf, 1).with_version(1))
        .await?;
    expect_kind(
        ctx.set
            .workflows
            .put(&ctx.tenant, put(&wf, 2).with_version(1))
            .await,
        ErrorKind::PreconditionFailed,
        "other content at v1",
    )?;
    ensure_eq!(
        ctx.set.workflows.get(&ctx.tenant, &wf, 1).await?.definition,
        put(&wf, 1).definition,
        "v1 unchanged"
    );
    Ok(())
}

/// W2: identical content again is an idempotent success.
pub async fn w2_identical_content_again_is_idempotent(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("w2i")?;
    let a = ctx
        .set
        .workflows
        .put(&ctx.tenant, put(&wf, 1).with_version(1))
        .await?;
    let b = ctx
        .set
        .workflows
        .put(&ctx.tenant, put(&wf, 1).with_version(1))
        .await?;
    ensure_eq!(a, b, "second identical put");
    ensure_eq!(
        ctx.set.workflows.versions(&ctx.tenant, &wf).await?.len(),
        1,
        "versions"
    );
    Ok(())
}

/// W3: without a version the next one is assigned, from 1.
pub async fn w3_next_version_is_assigned(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("w3")?;
    for want in 1..=3 {
        ensure_eq!(
            ctx.set
                .workflows
                .put(&ctx.tenant, put(&wf, i64::from(want)))
                .await?
                .meta
                .version,
            want,
            "assigned version"
        );
    }
    Ok(())
}

/// W3: versions are never reused, even after the newest was deleted.
pub async fn w3_versions_are_never_reused_after_delete(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("w3d")?;
    ctx.set.workflows.put(&ctx.tenant, put(&wf, 1)).await?;
    ctx.set.workflows.put(&ctx.tenant, put(&wf, 2)).await?;
    ctx.set.workflows.delete(&ctx.tenant, &wf, 2).await?;
    ensure_eq!(
        ctx.set
            .workflows
            .put(&ctx.tenant, put(&wf, 3))
            .await?
            .meta
            .version,
        3,
        "version after deleting v2"
    );
    expect_kind(
        ctx.set
            .workflows
            .put(&ctx.tenant, put(&wf, 9).with_version(2))
            .await,
        ErrorKind::PreconditionFailed,
        "explicit reuse of deleted v2",
    )?;
    Ok(())
}

/// W3: version 0 is invalid input.
pub async fn w3_version_zero_is_invalid(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("w3z")?;
    expect_kind(
        ctx.set
            .workflows
            .put(&ctx.tenant, put(&wf, 0).with_version(0))
            .await,
        ErrorKind::InvalidInput,
        "version 0",
    )?;
    Ok(())
}

/// W4: concurrent writers all succeed with distinct versions.
pub async fn w4_concurrent_writers_get_distinct_versions(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("w4")?;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (set, t, new) = (ctx.set.clone(), ctx.tenant.clone(), put(&wf, i));
        tasks.push(tokio::spawn(
            async move { set.workflows.put(&t, new).await },
        ));
    }
    let mut versions = BTreeSet::new();
    for task in tasks {
        let v = task
            .await
            .map_err(|e| crate::Failure(format!("writer task panicked: {e}")))??;
        versions.insert(v.meta.version);
    }
    ensure_eq!(
        versions,
        (1..=32).collect::<BTreeSet<u32>>(),
        "assigned versions"
    );
    ensure_eq!(
        ctx.set.workflows.versions(&ctx.tenant, &wf).await?.len(),
        32,
        "stored versions"
    );
    Ok(())
}

/// W5: lineage reads from a version back to its root.
pub async fn w5_lineage_reads_back_to_the_root(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("w5")?;
    ctx.set.workflows.put(&ctx.tenant, put(&wf, 1)).await?;
    ctx.set
        .workflows
        .put(&ctx.tenant, put(&wf, 2).with_parent(1))
        .await?;
    ctx.set.workflows.put(&ctx.tenant, put(&wf, 3)).await?;
    ctx.set
        .workflows
        .put(&ctx.tenant, put(&wf, 4).with_parent(2))
        .await?;
    let chain: Vec<u32> = ctx
        .set
        .workflows
        .lineage(&ctx.tenant, &wf, 4)
        .await?
        .iter()
        .map(|m| m.version)
        .collect();
    ensure_eq!(chain, vec![4, 2, 1], "lineage of v4");
    Ok(())
}

/// W5: a parent that does not exist is rejected and nothing is stored.
pub async fn w5_missing_parent_is_rejected(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("w5m")?;
    expect_kind(
        ctx.set
            .workflows
            .put(&ctx.tenant, put(&wf, 1).with_parent(7))
            .await,
        ErrorKind::InvalidInput,
        "missing parent",
    )?;
    ensure!(
        ctx.set
            .workflows
            .versions(&ctx.tenant, &wf)
            .await?
            .is_empty(),
        "a rejected put stored a version"
    );
    Ok(())
}

/// W6: latest is the highest version not deleted.
pub async fn w6_latest_is_highest_not_deleted(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("w6")?;
    for i in 1..=3 {
        ctx.set.workflows.put(&ctx.tenant, put(&wf, i)).await?;
    }
    ensure_eq!(
        ctx.set
            .workflows
            .latest(&ctx.tenant, &wf)
            .await?
            .meta
            .version,
        3,
        "latest"
    );
    ctx.set.workflows.delete(&ctx.tenant, &wf, 3).await?;
    ensure_eq!(
        ctx.set
            .workflows
            .latest(&ctx.tenant, &wf)
            .await?
            .meta
            .version,
        2,
        "latest after deleting v3"
    );
    Ok(())
}

/// W6: a workflow without versions has no latest.
pub async fn w6_latest_of_missing_workflow_is_not_found(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("w6m")?;
    expect_kind(
        ctx.set.workflows.latest(&ctx.tenant, &wf).await,
        ErrorKind::NotFound,
        "latest of nothing",
    )?;
    ctx.set.workflows.put(&ctx.tenant, put(&wf, 1)).await?;
    ctx.set.workflows.delete(&ctx.tenant, &wf, 1).await?;
    expect_kind(
        ctx.set.workflows.latest(&ctx.tenant, &wf).await,
        ErrorKind::NotFound,
        "latest after deleting all",
    )?;
    Ok(())
}

/// W7: versions list ascending, gaps from deletes included.
pub async fn w7_versions_list_ascending(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("w7")?;
    for i in 1..=5 {
        ctx.set.workflows.put(&ctx.tenant, put(&wf, i)).await?;
    }
    ctx.set.workflows.delete(&ctx.tenant, &wf, 3).await?;
    ctx.set
        .workflows
        .put(&ctx.tenant, put(&wf, 9).with_version(9))
        .await?;
    let got: Vec<u32> = ctx
        .set
        .workflows
        .versions(&ctx.tenant, &wf)
        .await?
        .iter()
        .map(|m| m.version)
        .collect();
    ensure_eq!(got, vec![1, 2, 4, 5, 9], "versions");
    Ok(())
}

/// W7: listing workflows pages by id, each exactly once, latest of each.
pub async fn w7_list_pages_yield_each_workflow_once(ctx: Ctx) -> TestResult {
    let mut want = Vec::new();
    for i in 0..23 {
        let wf: WorkflowId = id(&format!("wf-{i:03}"))?;
        ctx.set.workflows.put(&ctx.tenant, put(&wf, 1)).await?;
        ctx.set.workflows.put(&ctx.tenant, put(&wf, 2)).await?;
        want.push(wf);
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(5);
    loop {
        let p = ctx.set.workflows.list(&ctx.tenant, page).await?;
        ensure!(p.items.len() <= 5, "page larger than its limit");
        for m in &p.items {
            ensure_eq!(m.version, 2, "listed version of {}", m.workflow_id);
        }
        seen.extend(p.items.into_iter().map(|m| m.workflow_id));
        match p.next {
            Some(c) => page = PageRequest::after(5, c),
            None => break,
        }
    }
    ensure_eq!(seen, want, "workflows listed");
    Ok(())
}

/// W8: delete removes one version and nothing else.
pub async fn w8_delete_removes_one_version_only(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("w8")?;
    for i in 1..=3 {
        ctx.set.workflows.put(&ctx.tenant, put(&wf, i)).await?;
    }
    ctx.set.workflows.delete(&ctx.tenant, &wf, 2).await?;
    let got: Vec<u32> = ctx
        .set
        .workflows
        .versions(&ctx.tenant, &wf)
        .await?
        .iter()
        .map(|m| m.version)
        .collect();
    ensure_eq!(got, vec![1, 3], "versions after deleting v2");
    expect_kind(
        ctx.set.workflows.get(&ctx.tenant, &wf, 2).await,
        ErrorKind::NotFound,
        "get of deleted v2",
    )?;
    Ok(())
}

/// W8: deleting a missing version is not-found.
pub async fn w8_delete_missing_is_not_found(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("w8m")?;
    expect_kind(
        ctx.set.workflows.delete(&ctx.tenant, &wf, 1).await,
        ErrorKind::NotFound,
        "delete of nothing",
    )?;
    Ok(())
}

/// W9: tenants never see, list, overwrite or delete each other's workflows.
pub async fn w9_tenants_never_see_each_other(ctx: Ctx) -> TestResult {
    let wf: WorkflowId = id("shared-id")?;
    ctx.set
        .workflows
        .put(&ctx.tenant, put(&wf, 1).with_version(1))
        .await?;
    expect_kind(
        ctx.set.workflows.get(&ctx.other, &wf, 1).await,
        ErrorKind::NotFound,
        "other tenant's get",
    )?;
    ensure!(
        ctx.set
            .workflows
            .list(&ctx.other, PageRequest::first(10))
            .await?
            .items
            .is_empty(),
        "other tenant lists A's workflow"
    );
    expect_kind(
        ctx.set.workflows.delete(&ctx.other, &wf, 1).await,
        ErrorKind::NotFound,
        "other tenant's delete",
    )?;
    // Same id, other content, other tenant: no conflict, no overwrite.
    ctx.set
        .workflows
        .put(&ctx.other, put(&wf, 2).with_version(1))
        .await?;
    ensure_eq!(
        ctx.set.workflows.get(&ctx.tenant, &wf, 1).await?.definition,
        put(&wf, 1).definition,
        "A's v1"
    );
    Ok(())
}

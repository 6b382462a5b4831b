//! Which rows of a shared migration history are flowstore's. Before flowstore kept its
//! history in a table of its own, SQL adapters wrote it into sqlx's default table,
//! which a host's own migrations share; moving it out must take flowstore's rows only,
//! recognised by version and checksum together.

/// The versions of `rows` (version, checksum) that match one of `known` exactly.
#[must_use]
pub fn own_versions<'a>(
    rows: &[(i64, Vec<u8>)],
    known: impl IntoIterator<Item = (i64, &'a [u8])> + Clone,
) -> Vec<i64> {
    rows.iter()
        .filter(|(v, sum)| {
            known
                .clone()
                .into_iter()
                .any(|(kv, ks)| kv == *v && ks == sum.as_slice())
        })
        .map(|(v, _)| *v)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::own_versions;

    #[test]
    fn a_row_is_ours_when_version_and_checksum_both_match() {
        let known: [(i64, &[u8]); 2] = [(1, b"a"), (2, b"b")];
        for (rows, want) in [
            (vec![(1, b"a".to_vec()), (2, b"b".to_vec())], vec![1, 2]),
            (vec![(1, b"a".to_vec()), (2, b"x".to_vec())], vec![1]),
            (vec![(3, b"a".to_vec())], vec![]),
            (vec![], vec![]),
        ] {
            assert_eq!(own_versions(&rows, known), want, "{rows:?}");
        }
    }
}

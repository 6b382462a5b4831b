//! `flowstore credentials set|get|list|delete`.
//!
//! A value never comes from the command line, where it would stay in the shell's
//! history and be visible to every user through `ps`: `set` reads it from standard
//! input, or from a prompt that does not echo when standard input is a terminal. `get`
//! prints a value only when asked with `--reveal`.

use std::io::{IsTerminal, Read};

use serde_json::json;
use storage_ports::{CredentialKey, Secret};
use storage_wiring::Storage;

use crate::args::Args;
use crate::commands::{emit, tenant, Failure, Out};

/// Reads a secret: a hidden prompt on a terminal, else all of standard input (one
/// trailing newline removed, as `echo` adds one).
fn read_secret(key: &CredentialKey) -> Result<Secret, Failure> {
    let stdin = std::io::stdin();
    let mut value = if stdin.is_terminal() {
        rpassword::prompt_password(format!("value for {key} (not echoed): "))
            .map_err(|e| Failure::Other(format!("reading the value at the prompt: {e}")))?
    } else {
        let mut text = String::new();
        stdin
            .lock()
            .read_to_string(&mut text)
            .map_err(|e| Failure::Invalid(format!("reading the value from standard input: {e}")))?;
        text
    };
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        return Err(Failure::Invalid(format!(
            "no value for {key} on standard input; pipe it in (e.g. `printf %s \"$TOKEN\" | flowstore credentials set {key}`)"
        )));
    }
    Ok(Secret::new(value))
}

/// `flowstore credentials set|get|list|delete`.
pub async fn credentials(storage: &Storage, raw: &[String]) -> Out {
    let args = Args::parse(raw)?;
    let view = storage.tenant(tenant(&args)?);
    match args.arg(0, "set|get|list|delete")? {
        "set" => {
            let key = CredentialKey::new(args.arg(1, "key")?)?;
            if args.positional_count() > 2 {
                return Err(Failure::Invalid(
                    "refusing a value given on the command line: it would stay in your shell history and be visible in `ps`. Pipe it on standard input, or run the command in a terminal and type it at the prompt".into(),
                ));
            }
            let value = read_secret(&key)?;
            view.set_credential(&key, &value).await?;
            emit(
                &args,
                &json!({"key": key, "stored": true, "bytes": value.len()}),
                || format!("stored {key} ({} bytes)", value.len()),
            );
        }
        "get" => {
            let key = CredentialKey::new(args.arg(1, "key")?)?;
            let value = view.credential(&key).await?;
            if args.switch("--reveal") {
                emit(&args, &json!({"key": key, "value": value.expose()}), || {
                    value.expose().to_owned()
                });
            } else {
                emit(
                    &args,
                    &json!({"key": key, "set": true, "bytes": value.len()}),
                    || {
                        format!(
                            "{key} is set ({} bytes); add --reveal to print it",
                            value.len()
                        )
                    },
                );
            }
        }
        "list" => {
            let keys = view.credential_keys().await?;
            emit(&args, &keys, || {
                if keys.is_empty() {
                    "no credentials".into()
                } else {
                    keys.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            });
        }
        "delete" => {
            let key = CredentialKey::new(args.arg(1, "key")?)?;
            view.delete_credential(&key).await?;
            emit(&args, &json!({"key": key, "deleted": true}), || {
                format!("deleted {key}")
            });
        }
        other => {
            return Err(Failure::Invalid(format!(
                "unknown credentials command {other:?}; expected set, get, list or delete"
            )))
        }
    }
    Ok(())
}

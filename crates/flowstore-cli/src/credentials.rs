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

use crate::cli::CredentialsCommand;
use crate::commands::{emit, Ctx, Failure, Out};

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
pub async fn credentials(storage: &Storage, ctx: &Ctx, command: CredentialsCommand) -> Out {
    let view = storage.tenant(ctx.tenant()?);
    match command {
        CredentialsCommand::Set { key, value } => {
            let key = CredentialKey::new(key)?;
            if value.is_some() {
                return Err(Failure::Invalid(
                    "refusing a value given on the command line: it would stay in your shell history and be visible in `ps`. Pipe it on standard input, or run the command in a terminal and type it at the prompt".into(),
                ));
            }
            let value = read_secret(&key)?;
            view.set_credential(&key, &value).await?;
            emit(
                ctx,
                &json!({"key": key, "stored": true, "bytes": value.len()}),
                || format!("stored {key} ({} bytes)", value.len()),
            );
        }
        CredentialsCommand::Get { key, reveal } => {
            let key = CredentialKey::new(key)?;
            let value = view.credential(&key).await?;
            if reveal {
                emit(ctx, &json!({"key": key, "value": value.expose()}), || {
                    value.expose().to_owned()
                });
            } else {
                emit(
                    ctx,
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
        CredentialsCommand::List => {
            let keys = view.credential_keys().await?;
            emit(ctx, &keys, || {
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
        CredentialsCommand::Delete { key } => {
            let key = CredentialKey::new(key)?;
            view.delete_credential(&key).await?;
            emit(ctx, &json!({"key": key, "deleted": true}), || {
                format!("deleted {key}")
            });
        }
    }
    Ok(())
}

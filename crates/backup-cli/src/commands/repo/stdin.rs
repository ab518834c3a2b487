//! `kbackup backup stdin --name NAME`.

use crate::cli::StdinBackupArgs;
use crate::context::Context;
use crate::exit::{CliResult, Exit};
use crate::repository::{note_adopted, open};
use backup_usecases::streams::back_up_stream;
use indicatif::HumanBytes;
use tokio_util::compat::TokioAsyncReadCompatExt;

/// Standard input as one component of a new snapshot; prints the snapshot's id.
pub async fn backup_stdin(context: &Context, args: StdinBackupArgs) -> CliResult {
    let repository = open(context, &args.repo).await?;
    let stdin = tokio::io::stdin().compat();
    let done = back_up_stream(&repository, &args.name, stdin, args.marks.into()).await?;
    let stats = done.stats;
    note_adopted(context, stats.adopted_packs);
    context.info(&format!(
        "snapshot {} saved: {} read, {} of {} chunks new, {} added",
        done.id.short(),
        HumanBytes(done.size),
        stats.chunks - stats.deduplicated,
        stats.chunks,
        HumanBytes(stats.added_bytes)
    ));
    crate::output::write_stdout(format!("{}\n", done.id).as_bytes())?;
    Ok(Exit::Success)
}

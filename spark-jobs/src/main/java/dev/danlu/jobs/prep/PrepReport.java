package dev.danlu.jobs.prep;

import dev.danlu.data.manifest.Manifest;
import java.util.List;

/**
 * What a prep run did, for the console summary, schedulers and tests.
 *
 * @param committed true if a new manifest version was committed (false: dry run or up to date)
 * @param manifest the committed manifest (or the previous one when nothing changed; the would-be
 *     manifest is not built for a dry run, so null then)
 * @param tokenized paths of files tokenized in this run
 */
public record PrepReport(
    boolean committed,
    boolean dryRun,
    long version,
    int filesListed,
    int filesScanned,
    List<String> tokenized,
    List<String> reused,
    List<String> removed,
    List<String> skipped,
    long bytesTokenized,
    int tasks,
    Manifest manifest,
    String plan) {}

package dev.danlu.jobs.prep;

import dev.danlu.data.manifest.Manifest;
import java.util.List;

/**
 * What a prep run did, for the console summary, schedulers and tests.
 *
 * @param committed true if a new manifest version was committed (false: dry run or up to date)
 * @param work what the plan decided: the same numbers the plan printed
 * @param manifest the committed manifest (or the previous one when nothing changed; the would-be
 *     manifest is not built for a dry run, so null then)
 */
public record PrepReport(
    boolean committed, boolean dryRun, long version, Work work, Manifest manifest, String plan) {

  /**
   * The plan of one run, fixed before any tokenization starts.
   *
   * @param tokenized paths of files tokenized in this run: the changed ones and the unchanged
   *     members of the packing groups rewritten with them
   * @param changed paths of files whose content is new or changed
   * @param tasks work units (shard sets) the plan cut the files into
   * @param groupsReused packing groups whose shards are kept byte for byte
   * @param groupsWritten packing groups tokenized in this run
   * @param groupsDissolved groups of the previous version whose shards are no longer used
   */
  public record Work(
      int filesListed,
      int filesScanned,
      List<String> tokenized,
      List<String> changed,
      List<String> reused,
      List<String> removed,
      List<String> skipped,
      long bytesTokenized,
      int tasks,
      int groupsReused,
      int groupsWritten,
      int groupsDissolved) {}

  public int filesListed() {
    return work.filesListed();
  }

  public int filesScanned() {
    return work.filesScanned();
  }

  public List<String> tokenized() {
    return work.tokenized();
  }

  public List<String> changed() {
    return work.changed();
  }

  public List<String> reused() {
    return work.reused();
  }

  public List<String> removed() {
    return work.removed();
  }

  public List<String> skipped() {
    return work.skipped();
  }

  public long bytesTokenized() {
    return work.bytesTokenized();
  }

  public int tasks() {
    return work.tasks();
  }
}

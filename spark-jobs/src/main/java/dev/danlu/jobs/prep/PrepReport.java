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
   * @param tokenized paths of files tokenized in this run
   * @param tasks tokenize tasks (work units) the plan cut the files into
   */
  public record Work(
      int filesListed,
      int filesScanned,
      List<String> tokenized,
      List<String> reused,
      List<String> removed,
      List<String> skipped,
      long bytesTokenized,
      int tasks) {}

  public int filesListed() {
    return work.filesListed();
  }

  public int filesScanned() {
    return work.filesScanned();
  }

  public List<String> tokenized() {
    return work.tokenized();
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

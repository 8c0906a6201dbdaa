package dev.danlu.jobs.prep;

import dev.danlu.data.chunk.SourceScan;
import dev.danlu.data.manifest.Manifest;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** What the operator reads: the plan of a run and why an output was refused. */
final class PlanText {
  private PlanText() {}

  static String paramDiff(Manifest.Params a, Manifest.Params b) {
    List<String> d = new ArrayList<>();
    if (!a.tokenizerSha256().equals(b.tokenizerSha256())) {
      d.add(
          "tokenizer sha256 "
              + a.tokenizerSha256()
              + " ("
              + a.tokenizerFile()
              + ") vs "
              + b.tokenizerSha256()
              + " ("
              + b.tokenizerFile()
              + ")");
    }
    if (a.blockSize() != b.blockSize()) {
      d.add("block size " + a.blockSize() + " vs " + b.blockSize());
    }
    if (!a.chunking().equals(b.chunking())) {
      d.add("chunking " + a.chunking() + " vs " + b.chunking());
    }
    if (Double.compare(a.validationFraction(), b.validationFraction()) != 0) {
      d.add("validation fraction " + a.validationFraction() + " vs " + b.validationFraction());
    }
    if (!a.utf8Policy().equals(b.utf8Policy())) {
      d.add("utf8 policy " + a.utf8Policy() + " vs " + b.utf8Policy());
    }
    if (a.maxLineBytes() != b.maxLineBytes()) {
      d.add("max line bytes " + a.maxLineBytes() + " vs " + b.maxLineBytes());
    }
    if (a.bosId() != b.bosId() || a.eosId() != b.eosId()) {
      d.add("bos/eos " + a.bosId() + "/" + a.eosId() + " vs " + b.bosId() + "/" + b.eosId());
    }
    return "existing vs requested: " + String.join("; ", d);
  }

  static String plan(
      PrepOptions o,
      Manifest prev,
      PrepReport.Work work,
      Map<String, Manifest.SourceEntry> entries,
      Map<String, SourceScan.Result> scans) {
    StringBuilder sb = new StringBuilder();
    sb.append(
        String.format(
            Locale.ROOT,
            "prep plan for %s (%s):%n  %d files listed, %d scanned (new, or size/mtime changed)%n"
                + "  tokenize %d files, %.1f MB, %d tasks (%d new or changed files; %d packing"
                + " groups written, %d kept, %d of the previous version replaced)%n"
                + "  reuse %d files; remove %d files; skip %d files%n",
            o.output(),
            prev == null ? "new dataset" : "on top of version " + prev.version(),
            work.filesListed(),
            work.filesScanned(),
            work.tokenized().size(),
            work.bytesTokenized() / 1048576.0,
            work.tasks(),
            work.changed().size(),
            work.groupsWritten(),
            work.groupsReused(),
            work.groupsDissolved(),
            work.reused().size(),
            work.removed().size(),
            work.skipped().size()));
    List<String> changed = work.changed();
    int shown = 0;
    for (String p : changed) {
      if (shown++ == 20) {
        sb.append("    ... ").append(changed.size() - 20).append(" more\n");
        break;
      }
      SourceScan.Result r = scans.get(p);
      sb.append(
          String.format(
              Locale.ROOT,
              "    + %s (%d lines%s)%n",
              p,
              r.lines(),
              r.utf8Replacements() > 0
                  ? ", " + r.utf8Replacements() + " invalid UTF-8 sequences replaced"
                  : ""));
    }
    for (String p : work.removed()) {
      sb.append("    - ").append(p).append('\n');
    }
    for (String p : work.skipped()) {
      Manifest.SourceEntry e = entries.get(p);
      sb.append("    ! ").append(p).append(": skipped, ").append(e.skipReason()).append('\n');
    }
    return sb.toString();
  }
}

package dev.danlu.data.chunk;

import java.util.Locale;

/** How tokenized lines are concatenated before cutting into blocks. */
public enum ChunkingMode {
  /**
   * The reference "group_texts": within each file, consecutive groups of 1000 non-empty lines are
   * concatenated and cut; each group's remainder is dropped.
   */
  GROUP1000("group1000"),
  /** The whole file is concatenated, then cut; only the file's final remainder is dropped. */
  FILE("file");

  private final String cliName;

  ChunkingMode(String cliName) {
    this.cliName = cliName;
  }

  public String cliName() {
    return cliName;
  }

  /** Lines per group, or {@link Long#MAX_VALUE} for one group per file. */
  public long groupLines() {
    return this == GROUP1000 ? 1000 : Long.MAX_VALUE;
  }

  public static ChunkingMode parse(String s) {
    for (ChunkingMode m : values()) {
      if (m.cliName.equals(s.toLowerCase(Locale.ROOT))) {
        return m;
      }
    }
    throw new IllegalArgumentException(
        "unknown chunking mode '" + s + "' (expected group1000 or file)");
  }
}

package dev.danlu.data.sft;

import java.io.Serializable;

/**
 * What became of one input file's records: {@code read = kept + droppedFullyMasked + bad}; {@code
 * truncated} counts kept examples the cut at max_seq_length shortened (prompt or target, EOS
 * included).
 */
public record SftCounts(long read, long kept, long truncated, long droppedFullyMasked, long bad)
    implements Serializable {
  public static final SftCounts ZERO = new SftCounts(0, 0, 0, 0, 0);

  public SftCounts plus(SftCounts o) {
    return new SftCounts(
        read + o.read,
        kept + o.kept,
        truncated + o.truncated,
        droppedFullyMasked + o.droppedFullyMasked,
        bad + o.bad);
  }

  /** Mutable tally for one file. */
  public static final class Tally {
    private long read, kept, truncated, dropped, bad;

    /** Counts a built example; returns it if kept. */
    public SftExamples.Example add(SftExampleBuilder.Built b, int maxSeqLength) {
      read++;
      if (b.fullyMasked()) {
        dropped++;
        return null;
      }
      kept++;
      if (b.truncated(maxSeqLength)) {
        truncated++;
      }
      return b.example();
    }

    public void bad() {
      read++;
      bad++;
    }

    public SftCounts counts() {
      return new SftCounts(read, kept, truncated, dropped, bad);
    }
  }
}

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

    /**
     * Counts a preference pair built as two examples over one prompt (prep-pairs: rows chosen,
     * rejected); returns them, or null when the pair was dropped: the prompt fills L (both fully
     * masked), or the cut made both responses equal (nothing left to prefer).
     */
    public SftExamples.Example[] addPair(
        SftExampleBuilder.Built chosen, SftExampleBuilder.Built rejected, int maxSeqLength) {
      read++;
      if (chosen.fullyMasked()
          || rejected.fullyMasked()
          || java.util.Arrays.equals(chosen.example().inputIds(), rejected.example().inputIds())) {
        dropped++;
        return null;
      }
      kept++;
      if (chosen.truncated(maxSeqLength) || rejected.truncated(maxSeqLength)) {
        truncated++;
      }
      return new SftExamples.Example[] {chosen.example(), rejected.example()};
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

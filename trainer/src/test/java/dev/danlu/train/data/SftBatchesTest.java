package dev.danlu.train.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.danlu.data.sft.SftExamples;
import dev.danlu.train.model.Batch;
import java.util.List;
import org.junit.jupiter.api.Test;

/** SFT micro-batches: right padding to the longest row, masks and labels, the length cut. */
class SftBatchesTest {
  static final int PAD = 9;
  static final int X = -100;

  static SftExamples of(List<SftExamples.Example> rows) {
    return new SftExamples() {
      @Override
      public long rows() {
        return rows.size();
      }

      @Override
      public Example read(long row) {
        return rows.get((int) row);
      }

      @Override
      public void close() {}
    };
  }

  final SftExamples train =
      of(
          List.of(
              new SftExamples.Example(new int[] {1, 5, 6, 7, 2}, new int[] {X, X, X, 7, 2}),
              new SftExamples.Example(new int[] {1, 8, 3, 2}, new int[] {X, X, 3, 2}),
              new SftExamples.Example(
                  new int[] {1, 4, 4, 4, 4, 4, 2}, new int[] {X, X, 4, 4, 4, 4, 2})));

  @Test
  void padsEachMicroBatchToItsLongestRow() throws Exception {
    try (SftBatches b = new SftBatches(train, of(List.of()), PAD, 0, 1, 3, "ab")) {
      Batch m = b.trainBatch(new long[] {1, 0}, 4);
      assertEquals(2, m.batch());
      assertEquals(5, m.seq(), "the longer of the two rows, not the longest example");
      assertArrayEquals(new int[] {1, 8, 3, 2, PAD, 1, 5, 6, 7, 2}, m.inputIds());
      assertArrayEquals(new int[] {1, 1, 1, 1, 0, 1, 1, 1, 1, 1}, m.attentionMask());
      assertArrayEquals(new int[] {X, X, 3, 2, X, X, X, X, 7, 2}, m.labels());
      assertArrayEquals(new long[] {1, 0}, m.sampleIds(), "global row ids key the dropout");
      assertEquals(4, m.step());
      assertEquals(4, m.labelTokens()); // 3, 2 and 7, 2
      assertEquals(7, b.trainBatch(new long[] {2}, 0).seq());
    }
  }

  @Test
  void maxSeqLengthCutsRowsAndCanLeaveNoLabel() throws Exception {
    try (SftBatches b = new SftBatches(train, of(List.of()), PAD, 3, 1, 3, "ab")) {
      Batch m = b.trainBatch(new long[] {0, 1}, 0);
      assertEquals(3, m.seq());
      assertArrayEquals(new int[] {1, 5, 6, 1, 8, 3}, m.inputIds());
      assertArrayEquals(new int[] {X, X, X, X, X, 3}, m.labels());
      assertEquals(1, m.labelTokens());
      assertEquals(0, b.trainBatch(new long[] {0}, 0).labelTokens(), "prompt fills the cut");
    }
  }

  @Test
  void lengthsRoundUpToAMultipleCappedAtTheMaximum() throws Exception {
    try (SftBatches b = new SftBatches(train, of(List.of()), PAD, 0, 4, 3, "ab")) {
      Batch m = b.trainBatch(new long[] {0}, 0);
      assertEquals(8, m.seq(), "5 tokens rounded up to 8");
      assertArrayEquals(new int[] {1, 1, 1, 1, 1, 0, 0, 0}, m.attentionMask());
      assertEquals(2, m.labelTokens());
    }
    try (SftBatches b = new SftBatches(train, of(List.of()), PAD, 6, 4, 3, "ab")) {
      assertEquals(6, b.trainBatch(new long[] {0}, 0).seq(), "never beyond max_seq_length");
      assertEquals(6, b.trainBatch(new long[] {2}, 0).seq(), "7 tokens cut to 6");
    }
  }

  @Test
  void packingPutsSeveralExamplesInARowEachItsOwnSegment() throws Exception {
    // lengths 5, 4, 7 into rows of 9: best fit decreasing gives [7] then 5 -> new row [5, 4]
    try (SftBatches b = new SftBatches(train, of(List.of()), PAD, 9, 1, true, 3, "ab")) {
      assertEquals(2, b.trainRows());
      assertEquals(7, b.length(0));
      assertEquals(9, b.length(1));
      Batch m = b.trainBatch(new long[] {1, 0}, 2);
      assertEquals(9, m.seq());
      assertArrayEquals(
          new int[] {1, 5, 6, 7, 2, 1, 8, 3, 2, 1, 4, 4, 4, 4, 4, 2, PAD, PAD}, m.inputIds());
      assertArrayEquals(
          new int[] {1, 1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0}, m.segmentIds());
      assertArrayEquals(
          new int[] {0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 0, 1}, m.positionIds());
      assertArrayEquals(
          new int[] {X, X, X, 7, 2, X, X, 3, 2, X, X, 4, 4, 4, 4, 2, X, X}, m.labels());
      assertEquals(9, m.labelTokens(), "each example's label tokens, once");
      assertArrayEquals(new long[] {1, 0}, m.sampleIds(), "packed row ids key the dropout");
    }
  }

  @Test
  void packingIgnoresTheLabelOfAnExamplesFirstToken() throws Exception {
    // an example whose first token carries a label: alone nothing predicts it, packed neither
    SftExamples odd =
        of(
            List.of(
                new SftExamples.Example(new int[] {1, 5, 6}, new int[] {X, 5, 6}),
                new SftExamples.Example(new int[] {7, 8}, new int[] {7, 8})));
    try (SftBatches b = new SftBatches(odd, of(List.of()), PAD, 8, 1, true, 3, "ab")) {
      Batch m = b.trainBatch(new long[] {0}, 0);
      assertArrayEquals(new int[] {X, 5, 6, X, 8}, m.labels());
    }
  }

  @Test
  void packedRowsAreOtherRowsForCheckpoints() throws Exception {
    try (SftBatches plain = new SftBatches(train, of(List.of()), PAD, 9, 1, false, 3, "ab");
        SftBatches packed = new SftBatches(train, of(List.of()), PAD, 9, 1, true, 3, "ab")) {
      assertEquals("ab", plain.sha256());
      org.junit.jupiter.api.Assertions.assertNotEquals("ab", packed.sha256());
    }
  }
}

package dev.danlu.train.zero;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class ShardInfoTest {

  @Test
  void partitionsAreEqualContiguousAndCoverThePaddedTotal() {
    for (int world = 1; world <= 7; world++) {
      for (long total : new long[] {1, 83, 1000, 4096, 613_000_001L}) {
        int padded = ShardInfo.paddedTotal(total, world, 16);
        assertEquals(0, padded % (world * 16));
        assertEquals(true, padded >= total && padded - total < world * 16L);
        int next = 0;
        for (int r = 0; r < world; r++) {
          ShardInfo s = ShardInfo.of(total, world, r, 16);
          assertEquals(next, s.offset());
          assertEquals(padded / world, s.size());
          assertEquals(0, s.offset() % 16);
          next = s.end();
        }
        assertEquals(padded, next);
      }
    }
  }

  @Test
  void aPartitionMayCutThroughAParameter() {
    ShardInfo r1 = ShardInfo.of(83, 3, 1, 4); // padded 84, partitions [0,28) [28,56) [56,84)
    assertEquals(new ShardInfo(28, 28), r1);
    assertEquals(12, r1.overlap(23, 17)); // lora_B spans [23,40): 12 elements fall in rank 1
    assertEquals(0, r1.overlap(0, 23));
  }

  @Test
  void tooLargeForOneArrayIsAClearError() {
    var e =
        assertThrows(
            IllegalArgumentException.class, () -> ShardInfo.paddedTotal(3_000_000_000L, 4, 16));
    assertEquals(true, e.getMessage().contains("3000000000"));
  }
}

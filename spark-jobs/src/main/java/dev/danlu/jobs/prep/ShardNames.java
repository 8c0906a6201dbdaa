package dev.danlu.jobs.prep;

import dev.danlu.data.manifest.Manifest;
import dev.danlu.data.manifest.ManifestIo;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** Deterministic shard names: see docs/data-format.md, "Shard files". */
final class ShardNames {
  private ShardNames() {}

  /**
   * Shards of different parameters live in different directories, so a {@code --rebuild} never
   * overwrites a file that a kept older version still references (names are otherwise equal).
   */
  static String dir(Manifest.Params p) {
    String key =
        String.join(
            "|",
            p.tokenizerSha256(),
            Integer.toString(p.blockSize()),
            p.chunking(),
            Double.toString(p.validationFraction()),
            p.utf8Policy(),
            Integer.toString(p.maxLineBytes()),
            Integer.toString(p.bosId()),
            Integer.toString(p.eosId()));
    return ManifestIo.SHARDS_DIR + "/" + hash8(key);
  }

  static String hash8(String s) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)))
          .substring(0, 8);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** {@code <path8>-<sha16>}: the name prefix of one source file's shards. */
  static String prefix(String path, String contentSha256) {
    return hash8(path) + "-" + contentSha256.substring(0, 16);
  }
}
